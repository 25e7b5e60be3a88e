"""How much slower this machine is now than the quiet 2-core machine the suite's time limits were set on.

A limit that passed there in 3 minutes fails a loaded or a slower machine at a fixed 600 s (a second llama.cpp
worker on the same cores makes both many times slower: their thread pools spin). The suite's limits are therefore
multiplied by `SLOWDOWN`: the larger of how much longer a fixed piece of Python takes than it took there, and the
load average per core, never below 1. Measured once per session, when first asked.
"""

from __future__ import annotations

import os
import time
from functools import cache

QUIET_PROBE_S = 0.30  # the probe's time on the quiet machine the limits were set on (2 cores, 2026-12)


def _probe_seconds() -> float:
    """The shortest of three runs of a fixed pure-Python loop."""
    times = []
    for _ in range(3):
        started, total = time.perf_counter(), 0
        for number in range(3_000_000):
            total += number * number % 7
        times.append(time.perf_counter() - started)
    return min(times)


@cache
def slowdown() -> float:
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    return max(1.0, _probe_seconds() / QUIET_PROBE_S, load)


def scaled(seconds: float) -> float:
    """A time limit set on the quiet machine, for this one now."""
    return seconds * slowdown()
