#!/bin/sh
# Answers, closes its stdout and stderr, and runs on for a moment.
printf 'Content-Type: text/plain\n\ndetached\n'
exec >&- 2>&-
sleep 0.5
