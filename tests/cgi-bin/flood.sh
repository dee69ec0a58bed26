#!/bin/sh
# Floods stderr, then answers; stderr must reach the log, never the response.
i=0
while [ $i -lt 2000 ]; do echo "noise line $i" >&2; i=$((i+1)); done
printf 'Content-Type: text/plain\n\nclean\n'
