"""GC pass timings for the benchmarks (AXKIT_GC_STATS=file)."""

import gc
import time


class GCStats:
    """Times the garbage collector's passes (AXKIT_GC_STATS=file, for the
    benchmarks): how many per generation, and the longest full pass."""

    def __init__(self, path):
        self.path = path
        self.started = None
        self.counts = [0, 0, 0]
        self.total = [0.0, 0.0, 0.0]
        self.longest = [0.0, 0.0, 0.0]
        gc.callbacks.append(self)

    def __call__(self, phase, info):
        if phase == "start":
            self.started = time.perf_counter()
        elif self.started is not None:
            took = time.perf_counter() - self.started
            generation = info["generation"]
            self.counts[generation] += 1
            self.total[generation] += took
            self.longest[generation] = max(self.longest[generation], took)

    def write(self):
        with open(self.path, "w") as f:
            for g in range(3):
                f.write(
                    f"gen{g}: {self.counts[g]} passes, longest "
                    f"{self.longest[g] * 1000:.2f} ms, total {self.total[g] * 1000:.1f} ms; "
                )
