#!/bin/sh
printf 'Content-Type: text/plain\n\n%s|%s\n' "$SCRIPT_NAME" "$PATH_INFO"
