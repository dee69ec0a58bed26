#!/bin/sh
# Answers after a second (still running while the test reloads the config).
sleep 1
printf 'Content-Type: text/plain\n\nslow but sure\n'
