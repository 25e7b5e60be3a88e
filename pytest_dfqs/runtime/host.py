"""What the machine offers the runtime: memory, CPU model, physical cores.

Read from /proc where Linux has it, with portable fallbacks; the preflight,
the certificate's machine_info, the metrics conditions and the default
thread count all ask here.
"""

from __future__ import annotations

import os
import platform
import time

BUSY_SAMPLE_S = 0.5  # how long the machine is watched for other work


def available_memory() -> int:
    """MemAvailable from /proc/meminfo, in bytes: what can be had without swapping others out."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return physical_memory()


def physical_memory() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity), hyperthreads counted."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def busy_cores() -> float:
    """How many cores' worth of work other programs did over BUSY_SAMPLE_S: the machine's, from /proc/stat, less this
    process's own (0 where /proc/stat cannot be read). llama.cpp's threads meet after every operation, so a thread that
    shares its core with other work holds all of them up."""
    try:
        before, own_before, started = _cpu_ticks(), time.process_time(), time.monotonic()
        time.sleep(BUSY_SAMPLE_S)
        after, own, elapsed = _cpu_ticks(), time.process_time() - own_before, time.monotonic() - started
    except (OSError, ValueError):
        return 0.0
    busy, total = (a - b for a, b in zip(after, before))
    return max(0.0, (os.cpu_count() or 1) * busy / max(total, 1) - own / elapsed)


def _cpu_ticks() -> tuple[int, int]:
    """All CPUs' busy and total clock ticks so far, from /proc/stat's first line (time stolen by the host is busy)."""
    with open("/proc/stat", encoding="ascii") as handle:
        user, nice, system, idle, iowait, irq, softirq, steal = (int(field) for field in handle.readline().split()[1:9])
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


def threads_text(count: int) -> str:
    """'1 thread', '2 threads': a thread count as the terminal and the evidence say it."""
    return "1 thread" if count == 1 else f"{count} threads"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def physical_cores() -> int:
    """Distinct (physical id, core id) pairs of /proc/cpuinfo; os.cpu_count() where that says nothing."""
    cores: set[tuple[str, str]] = set()
    package = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() == "physical id":
                    package = value.strip()
                elif key.strip() == "core id":
                    cores.add((package, value.strip()))
    except OSError:
        pass
    return len(cores) or os.cpu_count() or 1
