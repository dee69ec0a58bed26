#!/bin/sh
# Non-parsed headers: the script writes the whole HTTP response itself.
printf 'HTTP/1.1 299 Custom\r\nX-NPH: untouched\r\nContent-Type: text/plain\r\n\r\nraw body\n'
