#!/bin/sh
# Never answers; starts a child of its own, which the timeout must kill too.
sleep 300 &
echo $! > "${HANG_PIDFILE:-/dev/null}"
sleep 300
