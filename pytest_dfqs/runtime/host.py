"""What the machine offers the runtime: memory, CPU model, physical cores.

Read from /proc where Linux has it, with portable fallbacks; the preflight,
the certificate's machine_info, the metrics conditions and the default
thread count all ask here.
"""

from __future__ import annotations

import os
import platform


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
