#!/bin/sh
# The smallest CGI program: a header block, a blank line, a body.
printf 'Content-Type: text/plain; charset=utf-8\r\n\r\n'
printf 'Hello from %s\n' "$SCRIPT_NAME"
printf 'PATH_INFO=%s\nQUERY_STRING=%s\n' "${PATH_INFO-}" "$QUERY_STRING"
