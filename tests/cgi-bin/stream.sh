#!/bin/sh
# Its head and a first part, then (still running) the rest: streamed output.
printf 'Content-Type: text/plain\n\nfirst part\n'
sleep 0.3
printf 'second part\n'
