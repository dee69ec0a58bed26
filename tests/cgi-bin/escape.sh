#!/bin/sh
# Answers, then leaves a child in a session of its own holding stdout (a
# daemon started carelessly): signals to the group cannot reach it.
printf 'Content-Type: text/plain\n\nparent done\n'
setsid sleep 30 &
echo $! > "${ESCAPE_PIDFILE:-/dev/null}"
exit 0
