"""Instructions per request with the clock frozen: bench/hotpath.py's
request loop under callgrind, time.time and time.monotonic constant, so
the paths that run once a second (the Date line, cache re-checks) never
run and two trees compare to within a few instructions (hotpath.py's own
callgrind figure moves by a few hundred to a few thousand between runs).

    python bench/hotpath_frozen.py                       # this tree, static
    python bench/hotpath_frozen.py --config default
    python bench/hotpath_frozen.py --repo /path/to/other/checkout

The figure is the difference of a 1,300- and a 300-request run, so
start-up cancels out.  Needs valgrind.
"""

import argparse
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def feed(repo, config, count):
    """(In the child under callgrind.)  Feed ``count`` requests."""
    time.time = itertools.repeat(1_800_000_000.0).__next__
    time.monotonic = itertools.repeat(1000.0).__next__
    sys.path.insert(0, os.path.join(repo, "bench"))
    import hotpath

    work = tempfile.mkdtemp()
    try:
        send = hotpath.connection(config, work)
        for _ in range(count):
            send(hotpath.REQUEST)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def total(repo, config, count):
    out = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--feed",
            str(count),
            "--repo",
            repo,
            "--config",
            config,
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONHASHSEED="0", PYTHONPATH=repo),
    ).stderr
    refs = [
        int(line.rsplit(":", 1)[1].replace(",", "")) for line in out.splitlines() if "refs:" in line
    ]
    if not refs:
        raise RuntimeError(out[-2000:])
    return refs[-1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", default=os.path.dirname(HERE))
    ap.add_argument("--config", choices=("static", "default"), default="static")
    ap.add_argument("--feed", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.feed is not None:
        feed(args.repo, args.config, args.feed)
        return
    small, large = 300, 1300
    per = (total(args.repo, args.config, large) - total(args.repo, args.config, small)) / (
        large - small
    )
    print(f"{args.repo} {args.config}: {per:.0f} instructions per request (clock frozen)")


if __name__ == "__main__":
    main()
