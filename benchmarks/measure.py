"""Wall time and peak memory of a command, measured from outside it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

MEASURE = (
    "import os, subprocess, sys, time; started = time.perf_counter();"
    "child = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT);"
    "output = child.stdout.read(); usage = os.wait4(child.pid, 0)[2];"
    "print(time.perf_counter() - started, usage.ru_maxrss); sys.stdout.flush(); os.write(1, output)"
)


def run_measured(args: list[str], cwd: Path) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in MB and output of one command.

    A small launcher process starts the command: a child forked straight from
    this (large) benchmark process would count the parent's pages in its
    peak RSS.
    """
    result = subprocess.run([sys.executable, "-c", MEASURE, *args], cwd=cwd, capture_output=True, text=True, check=True)
    first, _, output = result.stdout.partition("\n")
    wall, rss_kb = first.split()
    return float(wall), int(rss_kb) // 1024, output


def best_of(rounds: int, action: Callable[[], object]) -> float:
    """The shortest wall time of `rounds` runs of `action`, in seconds."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)
