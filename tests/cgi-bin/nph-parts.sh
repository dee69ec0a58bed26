#!/bin/sh
# Non-parsed headers, written in two parts with a pause between them.
printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst\n'
sleep 0.3
printf 'second\n'
