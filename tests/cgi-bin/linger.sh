#!/bin/sh
# Answers, closes its output, and takes a moment more to exit (cleanup work).
printf 'Content-Type: text/plain\n\ndone\n'
exec >&- 2>&-
sleep 0.1
