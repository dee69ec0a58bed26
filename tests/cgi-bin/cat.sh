#!/bin/sh
# Echoes stdin until EOF, with no Content-Length (chunked to the client).
printf 'Content-Type: application/octet-stream\r\n\r\n'
exec cat
