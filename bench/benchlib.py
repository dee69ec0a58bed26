"""What the benchmark scripts share (each runs as `python bench/NAME.py`)."""

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

# The project's own helpers: a free port on 127.0.0.1, `twistd` as a command.
from axkit.testing import TWISTD_COMMAND as TWISTD  # noqa: E402
from axkit.testing import free_port  # noqa: E402

__all__ = ["REPO", "TWISTD", "BytecodeCounter", "callgrind_per_request", "free_port", "rss_kib"]


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


class BytecodeCounter:
    """A ``sys.settrace`` function counting Python calls and bytecodes per
    function (exact), and their report per request."""

    def __init__(self):
        import collections

        self.counts = collections.Counter()
        self.calls = collections.Counter()

    def __call__(self, frame, event, arg):
        key = (os.path.relpath(frame.f_code.co_filename, REPO), frame.f_code.co_name)
        if event == "call":
            frame.f_trace_opcodes = True
            frame.f_trace_lines = False
            self.calls[key] += 1
        elif event == "opcode":
            self.counts[key] += 1
        return self

    def report(self, n, top, where=""):
        """Print the totals per request (``n`` requests) and the ``top`` functions."""
        counts, calls = self.counts, self.calls
        print(
            f"{sum(counts.values()) / n:.0f} bytecodes and {sum(calls.values()) / n:.0f} "
            f"Python calls per request{where}"
        )
        for (path, name), v in counts.most_common(top):
            print(f"  {v / n:6.0f} bytecodes  {calls[(path, name)] / n:4.1f} calls  {path}:{name}")


def callgrind_per_request(command, small, large):
    """Instructions per request of ``command + ["--loop", N]`` under
    callgrind: the difference of runs with ``small`` and ``large`` requests,
    so start-up cancels out (the last "refs:" summary of each run counts).
    None when valgrind is not installed."""
    import shutil
    import subprocess

    if shutil.which("valgrind") is None:
        return None

    def total(n):
        out = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--callgrind-out-file=/dev/null",
                *command,
                "--loop",
                str(n),
            ],
            capture_output=True,
            text=True,
            # A fixed hash seed: dict probing, and so the count, repeats exactly.
            env=dict(os.environ, PYTHONHASHSEED="0"),
        ).stderr
        refs = [
            int(line.rsplit(":", 1)[1].replace(",", ""))
            for line in out.splitlines()
            if "refs:" in line
        ]
        if not refs:
            raise RuntimeError(out[-2000:])
        return refs[-1]

    return (total(large) - total(small)) / (large - small)


def measure_in_memory(one, top, n=20000, warm=2000, traced=200):
    """The in-memory hot-path report: ``one()`` (one request) run ``warm``
    times, then ``traced`` times under a BytecodeCounter (printed with its
    ``top`` functions), then the best of 5 timed loops of ``n``."""
    import sys
    import time

    for _ in range(warm):
        one()
    counter = BytecodeCounter()
    sys.settrace(counter)
    for _ in range(traced):
        one()
    sys.settrace(None)
    counter.report(traced, top)
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(n):
            one()
        best = min(best, (time.perf_counter() - started) / n)
    print(f"{best * 1e6:.1f} us per request (best of 5 loops of {n}; noisy)")
