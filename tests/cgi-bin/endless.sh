#!/bin/sh
# Writes for ever: only a reader that goes on reading, or a kill, stops it.
printf 'Content-Type: text/plain\n\n'
while :; do echo "endless output endless output endless output endless output"; done
