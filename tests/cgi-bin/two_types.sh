#!/bin/sh
# Two Content-Type lines: the last one counts (Apache), one field is sent.
printf 'Content-Type: text/html\nContent-Type: text/plain\n\nbody\n'
