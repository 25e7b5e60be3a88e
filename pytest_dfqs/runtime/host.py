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
    """How many cores' worth of work other programs did over BUSY_SAMPLE_S: the machine's, from /proc/stat, less the
    work of this process and of every process it started (llama.cpp's workers, rpc-servers, a test's own servers: 0
    where /proc cannot be read). llama.cpp's threads meet after every operation, so a thread that shares its core with
    other work holds all of them up; time the hypervisor stole is no program's work here and is not counted."""
    try:
        before, own_before = _cpu_ticks(), _own_ticks()
        time.sleep(BUSY_SAMPLE_S)
        after, own = _cpu_ticks(), _own_ticks() - own_before
    except (OSError, ValueError):
        return 0.0
    busy, total = (a - b for a, b in zip(after, before))
    return max(0.0, (os.cpu_count() or 1) * (busy - own) / max(total, 1))


def _cpu_ticks() -> tuple[int, int]:
    """All CPUs' busy and total clock ticks so far, from /proc/stat's first line. Steal (time the host gave to other
    machines) is in the total, not in the busy ticks: on a virtual machine it is no program's work here."""
    with open("/proc/stat", encoding="ascii") as handle:
        user, nice, system, idle, iowait, irq, softirq, steal = (int(field) for field in handle.readline().split()[1:9])
    busy = user + nice + system + irq + softirq
    return busy, busy + idle + iowait + steal


def _own_ticks() -> int:
    """The clock ticks this process and every living process it started have run, with those they waited for
    (/proc/PID/stat's utime, stime, cutime and cstime): a worker that exits is counted by its parent once reaped."""
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        fields = _process_stat(entry.name) if entry.name.isdigit() else []
        if fields:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
            ticks[int(entry.name)] = sum(int(field) for field in fields[11:15])
    own, family = 0, [os.getpid()]
    while family:
        pid = family.pop()
        own += ticks.get(pid, 0)
        family += children.get(pid, [])
    return own


def _process_stat(pid: str) -> list[str]:
    """/proc/PID/stat's fields after the command name (the state first, then the parent), or none for a process that
    has gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rpartition(")")[2].split()
    except OSError:
        return []


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
