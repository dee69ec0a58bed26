#!/usr/bin/env python3
# A program written against Python's own (old) cgi module, as many were.
import warnings

warnings.simplefilter("ignore", DeprecationWarning)
import cgi  # noqa: E402

form = cgi.FieldStorage()
print("Content-Type: text/plain; charset=utf-8")
print()
for key in sorted(form.keys()):
    print(f"{key}={form.getfirst(key)}")
