#!/bin/sh
# Reads nothing for a second, then swallows its stdin and reports the count.
sleep 1
n=$(wc -c)
printf 'Content-Type: text/plain\n\nread %s\n' "$n"
