"""Running model-written code: in a separate, limited process, never in pytest's.

Each program runs in a fresh Python (`-I`, isolated mode) in a new session,
inside a temporary directory that is its home and its only writable place,
with limits on address space, CPU time and file size, and a wall-clock
timeout after which its whole process group is killed. An audit hook, set
before the program starts, refuses to open the model file's folder, to
write, remove or rename anything outside the temporary directory, and to
start processes, open sockets or load libraries through ctypes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

MEMORY_BYTES = 512 << 20
TIMEOUT_S = 10.0
FILE_BYTES = 1 << 20

RUNNER = r"""
import os, resource, sys
memory, cpu_seconds, file_bytes, workdir = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
forbidden = [os.path.realpath(path) for path in sys.argv[5:]]
resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
BLOCKED = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
           "socket.connect", "socket.bind", "ctypes.dlopen", "os.kill", "os.killpg", "pty.spawn"}
CHANGES = {"os.remove", "os.unlink", "os.rmdir", "os.rename", "os.replace", "shutil.rmtree", "os.truncate",
           "os.chmod", "os.chown", "os.mkdir", "os.symlink", "os.link", "os.utime", "shutil.move", "shutil.copyfile"}

def inside(path, folder):
    path = os.path.realpath(os.fsdecode(path))
    return path == folder or path.startswith(folder + os.sep)

RAW_MODULES = {"_posixsubprocess", "ctypes", "_ctypes", "_socket", "socket", "mmap", "resource", "signal"}

def guard(event, args):
    if event in BLOCKED:
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "import" and args[0].split(".")[0] in RAW_MODULES:
        raise PermissionError(f"sandbox: importing {args[0]} is not allowed")
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path, mode, flags = args
        if inside(path, workdir):
            return
        if any(inside(path, folder) for folder in forbidden):
            raise PermissionError(f"sandbox: {os.fsdecode(path)} is off limits")
        writing = (mode is not None and any(c in mode for c in "wax+")) or (flags or 0) & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        if writing:
            raise PermissionError(f"sandbox: writing {os.fsdecode(path)} is not allowed")
    elif event in CHANGES:
        paths = [a for a in args if isinstance(a, (str, bytes, os.PathLike))]
        if not all(inside(p, workdir) for p in paths):
            raise PermissionError(f"sandbox: {event} outside the sandbox is not allowed")

sys.addaudithook(guard)
source = sys.stdin.read()
exec(compile(source, "<candidate>", "exec"), {"__name__": "__main__"})
"""


@dataclass(frozen=True)
class SandboxResult:
    status: str  # passed | failed | timeout | killed
    detail: str
    seconds: float

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def run_sandboxed(
    source: str,
    forbidden: tuple[Path, ...] = (),
    timeout_s: float = TIMEOUT_S,
    memory_bytes: int = MEMORY_BYTES,
) -> SandboxResult:
    """Run `source` as a program under the sandbox's limits; says how it ended."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dfqs-sandbox-") as workdir:
        command = [
            sys.executable,
            "-I",
            "-c",
            RUNNER,
            str(memory_bytes),
            str(max(1, int(timeout_s))),
            str(FILE_BYTES),
            os.path.realpath(workdir),
            *map(str, forbidden),
        ]
        environment = {"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8"}
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=workdir,
            env=environment,
            start_new_session=True,
            text=True,
        )
        try:
            _, errors = process.communicate(source, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            return SandboxResult("timeout", f"killed after {timeout_s:.0f} s", time.perf_counter() - started)
    return _ending(process.returncode, errors, time.perf_counter() - started)


def _ending(code: int, errors: str, seconds: float) -> SandboxResult:
    if code == 0:
        return SandboxResult("passed", "", seconds)
    if code < 0:
        return SandboxResult("killed", f"signal {signal.Signals(-code).name}", seconds)
    lines = [line for line in errors.strip().splitlines() if line.strip()]
    return SandboxResult("failed", lines[-1][:300] if lines else f"exit status {code}", seconds)
