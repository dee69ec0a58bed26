#!/bin/sh
# Sends its head and a bit of body, then goes silent.
echo $$ > "${STALL_PIDFILE:-/dev/null}"
printf 'Content-Type: text/plain\n\nfirst part\n'
sleep 300
