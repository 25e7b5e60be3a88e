"""Running model-written code: walled in by the operating system, never in pytest's process.

The model under test is hostile input, and so is every program it writes. An
audit hook inside the program's own Python cannot contain it (the program can
reach the hook's globals). Each program therefore runs in `jail.py`, in a fresh
Python (`-I`), inside Linux namespaces where `unshare` can make them without
root (a user namespace, no network, its own PID and IPC namespaces, killed with
its parent), under rlimits, Landlock (reading only the Python installation and
system libraries, writing only its temporary directory, no signals or abstract
sockets beyond itself) and seccomp (no new processes or programs, no ptrace,
mount, namespace, module, BPF or socket calls, no raising of limits). The
strongest combination this machine offers is used; `isolation_layers` says
which, and the metrics record's conditions carry it. A wall-clock timeout kills
the whole process group, the namespace's processes with it.
"""

from __future__ import annotations

import ctypes.util
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from . import jail

MEMORY_BYTES = 512 << 20
TIMEOUT_S = 10.0
FILE_BYTES = 1 << 20
JAIL = Path(jail.__file__).resolve()
NAMESPACES = ("--user", "--map-root-user", "--net", "--pid", "--ipc", "--fork", "--kill-child")
JAIL_LINE = "dfqs-jail: "
SYSTEM_LIBRARIES = ("/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib")


OS_WALLS = ("namespaces", "landlock", "seccomp")
LAYERS_VARIABLE = "DFQS_SANDBOX_LAYERS"  # names the only layers to use (tests, and anyone checking a weaker machine's behaviour)


@cache
def isolation_layers() -> tuple[str, ...]:
    """The walls this machine can put around a program without root: namespaces, landlock, seccomp (rlimits always).

    DFQS_SANDBOX_LAYERS=name,... keeps only the layers it names: what a machine offering fewer would do.
    """
    layers = ["rlimits"]
    if _namespaces_work():
        layers.append("namespaces")
    if jail.landlock_abi():
        layers.append("landlock")
    if seccomp_library():
        layers.append("seccomp")
    wanted = os.environ.get(LAYERS_VARIABLE)
    return tuple(layer for layer in layers if wanted is None or layer == "rlimits" or layer in wanted.split(","))


def unsandboxed_problem() -> str | None:
    """Why model-written code cannot be contained here; None when the operating system offers a wall."""
    if any(layer in OS_WALLS for layer in isolation_layers()):
        return None
    return (
        "this machine offers no operating-system isolation for model-written code (no user namespaces, Landlock or seccomp):"
        " code_score is not run; --dfqs-allow-unsandboxed-code runs it with rlimits only, at your own risk"
    )


@cache
def seccomp_library() -> str | None:
    """libseccomp's name for the dynamic loader; the jail loads it before its walls go up, while the loader's cache is readable."""
    return ctypes.util.find_library("seccomp")


def _namespaces_work() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    try:
        return subprocess.run([unshare, *NAMESPACES, "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def readable_folders() -> list[str]:
    """What a program may read: its Python's standard library and extension modules, and the system's libraries."""
    paths = sysconfig.get_paths()
    return sorted({os.path.realpath(paths[key]) for key in ("stdlib", "platstdlib")} | set(SYSTEM_LIBRARIES))


@dataclass(frozen=True)
class SandboxResult:
    status: str  # passed | failed | timeout | killed
    detail: str
    seconds: float
    layers: tuple[str, ...] = ()  # the walls that stood around the program

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def run_sandboxed(
    source: str,
    forbidden: tuple[Path, ...] = (),
    timeout_s: float = TIMEOUT_S,
    memory_bytes: int = MEMORY_BYTES,
) -> SandboxResult:
    """Run `source` as a program inside the jail; says how it ended and which walls stood.

    `forbidden` names folders the program must not read (the model's): Landlock grants nothing there.
    """
    started = time.perf_counter()
    layers = isolation_layers()
    with tempfile.TemporaryDirectory(prefix="dfqs-sandbox-") as workdir:
        settings = {
            "memory": memory_bytes,
            "cpu_seconds": max(1, int(timeout_s)),
            "file_bytes": FILE_BYTES,
            "workdir": os.path.realpath(workdir),
            "readable": [path for path in readable_folders() if not _under_any(path, forbidden)],
            "layers": list(layers),
            "seccomp_library": seccomp_library(),
        }
        prefix = [shutil.which("unshare") or "unshare", *NAMESPACES, "--"] if "namespaces" in layers else []
        command = [*prefix, sys.executable, "-I", str(JAIL), json.dumps(settings)]
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
            _, errors = process.communicate()
            in_force = _in_force(errors, layers)
            return SandboxResult("timeout", f"killed after {timeout_s:.0f} s", time.perf_counter() - started, in_force)
    return _ending(process.returncode, errors, time.perf_counter() - started, layers)


def _under_any(path: str, folders: tuple[Path, ...]) -> bool:
    return any(Path(path).is_relative_to(folder.resolve()) or folder.resolve().is_relative_to(path) for folder in folders)


def _in_force(errors: str, layers: tuple[str, ...]) -> tuple[str, ...]:
    """The walls the jail reported standing (its first line), with the namespaces it ran in."""
    line = next((line for line in errors.splitlines() if line.startswith(JAIL_LINE)), "")
    reported = tuple(line[len(JAIL_LINE) :].split())
    return (("namespaces",) if "namespaces" in layers else ()) + reported


def _ending(code: int, errors: str, seconds: float, layers: tuple[str, ...]) -> SandboxResult:
    in_force = _in_force(errors, layers)
    if code == 0:
        return SandboxResult("passed", "", seconds, in_force)
    if code < 0 or code >= 128 + 1 and code - 128 in signal.valid_signals():  # unshare reports its child's signal as 128 + n
        number = -code if code < 0 else code - 128
        return SandboxResult("killed", f"signal {signal.Signals(number).name}", seconds, in_force)
    lines = [line for line in errors.strip().splitlines() if line.strip() and not line.startswith(JAIL_LINE)]
    return SandboxResult("failed", lines[-1][:300] if lines else f"exit status {code}", seconds, in_force)


def sandbox_seconds() -> float:
    """How long one program takes in the sandbox, walls included, when it does nothing: the work plan's charge per
    HumanEval problem."""
    return run_sandboxed("pass\n").seconds
