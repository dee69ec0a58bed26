#!/bin/sh
# Status with and without a reason phrase, bare LF line ends, extra headers.
if [ "$QUERY_STRING" = "bare" ]; then
  printf 'Status: 404\nContent-Type: text/plain\nX-Custom: yes\n\nnot here\n'
else
  printf 'Status: 418 I am a teapot\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nConnection: close\r\n\r\nteapot\n'
fi
