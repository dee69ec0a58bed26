#!/usr/bin/env python3
# Dumps what a CGI program sees: its environment, cwd, argv and stdin, as JSON.
import json
import os
import sys

length = os.environ.get("CONTENT_LENGTH")
body = sys.stdin.buffer.read(int(length)) if length else b""
out = json.dumps(
    {
        "env": dict(os.environ),
        "cwd": os.getcwd(),
        "argv": sys.argv[1:],
        "body": body.decode("latin-1"),
    }
).encode()
sys.stdout.buffer.write(
    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(out) + out
)
