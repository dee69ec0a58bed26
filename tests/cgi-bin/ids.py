#!/usr/bin/env python3
# Prints the program's process id, process group and session.
import os

print("Content-Type: text/plain\n")
print(os.getpid(), os.getpgid(0), os.getsid(0))
