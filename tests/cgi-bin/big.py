#!/usr/bin/env python3
# Writes QUERY_STRING megabytes, a numbered 64 KiB block at a time.
import os
import sys

mb = int(os.environ.get("QUERY_STRING") or "1")
out = sys.stdout.buffer
out.write(b"Content-Type: application/octet-stream\n\n")
for i in range(mb * 16):
    out.write((b"%08d" % i) * 8192)
out.flush()
