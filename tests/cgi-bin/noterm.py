#!/usr/bin/env python3
# Ignores SIGTERM and never answers: only SIGKILL ends it.
import os
import signal
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)
with open(os.environ["NOTERM_PIDFILE"], "w") as f:
    f.write(str(os.getpid()))
time.sleep(300)
