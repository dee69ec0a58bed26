"""What the benchmark scripts share (each runs as `python bench/NAME.py`)."""

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

# The project's own helpers: a free port on 127.0.0.1, `twistd` as a command.
from axkit.testing import TWISTD_COMMAND as TWISTD, free_port  # noqa: E402

__all__ = ["REPO", "TWISTD", "free_port", "rss_kib"]


def rss_kib(pid):
    """The resident set size of process ``pid`` in KiB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0
