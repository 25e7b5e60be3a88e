"""The process a model-written program runs in: the operating system's walls, then the program.

Run as `python -I jail.py SETTINGS_JSON` inside `unshare --user --map-root-user
--net --pid --ipc --fork --kill-child` where that exists (no network, no
other process visible, nothing outside the namespaces to signal). Before the
program is read, this process puts up what the kernel offers without root, in
order, each one permanent for it and everything it starts:

- rlimits: address space, CPU seconds, file size, no core dumps;
- no_new_privs, then Landlock (kernel 5.13+): reading only the Python
  installation's folders and the system's libraries, writing only the
  temporary directory; with Landlock ABI 6, no signals and no abstract unix
  sockets beyond its own domain;
- seccomp (through libseccomp): no new processes or programs (execve, fork,
  clone without CLONE_THREAD), no ptrace or reading other processes' memory,
  no mount, namespace, module, keyring, BPF or io_uring calls, no raising of
  limits, no sockets.

It then reports, on stderr's first line, which layers are in force, and runs
the program from stdin. It imports nothing of pytest_dfqs: nothing the
program can reach holds the policy.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import sys
from typing import Any

LANDLOCK_CREATE_RULESET, LANDLOCK_ADD_RULE, LANDLOCK_RESTRICT_SELF = 444, 445, 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
PR_SET_NO_NEW_PRIVS = 38
READ = (1 << 0) | (1 << 2) | (1 << 3)  # execute, read file, read dir
FS_ACCESS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1, 5: (1 << 16) - 1}
NET_ALL = (1 << 0) | (1 << 1)  # bind and connect over TCP (ABI 4+)
SCOPE_ALL = (1 << 0) | (1 << 1)  # abstract unix sockets and signals (ABI 6+)
WRITABLE_DEVICES = ("/dev/null",)
READABLE_DEVICES = ("/dev/urandom", "/dev/zero")

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_NE, SCMP_CMP_MASKED_EQ = 1, 7
CLONE_THREAD = 0x00010000
DENIED_SYSCALLS = (
    "execve", "execveat", "fork", "vfork", "ptrace", "process_vm_readv", "process_vm_writev", "mount", "umount2",
    "pivot_root", "chroot", "unshare", "setns", "bpf", "perf_event_open", "keyctl", "add_key", "request_key",
    "init_module", "finit_module", "delete_module", "kexec_load", "reboot", "swapon", "swapoff", "setrlimit",
    "personality", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register", "socket", "socketpair",
    "open_by_handle_at", "name_to_handle_at", "kcmp", "pidfd_getfd", "process_madvise",
)  # fmt: skip


class ScmpArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


class RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


LIBC = ctypes.CDLL(None, use_errno=True)


def set_limits(settings: dict[str, Any]) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (settings["memory"], settings["memory"]))
    resource.setrlimit(resource.RLIMIT_CPU, (settings["cpu_seconds"], settings["cpu_seconds"] + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (settings["file_bytes"], settings["file_bytes"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 where Landlock is absent or disabled."""
    version = LIBC.syscall(LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    return max(int(version), 0)


def apply_landlock(readable: list[str], writable: str) -> int:
    """Restrict this process to reading `readable` and reading and writing `writable`; returns the ABI used (0: none)."""
    abi = landlock_abi()
    if not abi:
        return 0
    everything = FS_ACCESS_BY_ABI.get(abi, (1 << 16) - 1)
    attr = RulesetAttr(everything, NET_ALL if abi >= 4 else 0, SCOPE_ALL if abi >= 6 else 0)
    size = ctypes.sizeof(RulesetAttr) if abi >= 6 else (16 if abi >= 4 else 8)
    ruleset = LIBC.syscall(LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")
    try:
        for path in readable:
            _allow(ruleset, path, READ)
        for path in READABLE_DEVICES:
            _allow(ruleset, path, 1 << 2)
        for path in WRITABLE_DEVICES:
            _allow(ruleset, path, (1 << 1) | (1 << 2))
        _allow(ruleset, writable, everything)
        if LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        if LIBC.syscall(LANDLOCK_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    return abi


def _allow(ruleset: int, path: str, access: int) -> None:
    """Grant `access` beneath `path`; a path that does not exist is skipped (file rights only for files)."""
    try:
        descriptor = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if not os.path.isdir(path):
            access &= (1 << 0) | (1 << 1) | (1 << 2) | (1 << 14)  # execute, write, read, truncate: what a file can have
        rule = PathBeneathAttr(access, descriptor)
        if LIBC.syscall(LANDLOCK_ADD_RULE, ruleset, LANDLOCK_RULE_PATH_BENEATH, ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule {path}")
    finally:
        os.close(descriptor)


def load_seccomp(path: str | None) -> Any:
    """libseccomp, loaded before the walls go up (behind Landlock it might not be found); None without it."""
    try:
        return ctypes.CDLL(path, use_errno=True) if path else None
    except OSError:
        return None


def apply_seccomp(seccomp: Any) -> bool:
    """Deny the system calls no test program needs; False where libseccomp is not installed."""
    if seccomp is None:
        return False
    seccomp.seccomp_init.restype = ctypes.c_void_p
    seccomp.seccomp_init.argtypes = [ctypes.c_uint32]
    seccomp.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    seccomp.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p]
    seccomp.seccomp_load.argtypes = [ctypes.c_void_p]
    seccomp.seccomp_release.argtypes = [ctypes.c_void_p]
    context = seccomp.seccomp_init(SCMP_ACT_ALLOW)
    denied = 0x00050000 | 1  # SCMP_ACT_ERRNO(EPERM)
    try:
        for call in DENIED_SYSCALLS:
            _rule(seccomp, context, denied, call)
        _rule(seccomp, context, denied, "prlimit64", ScmpArgCmp(2, SCMP_CMP_NE, 0, 0))  # reading limits stays possible
        _rule(seccomp, context, denied, "clone", ScmpArgCmp(0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0))  # threads stay possible
        _rule(seccomp, context, 0x00050000 | 38, "clone3")  # ENOSYS: the C library falls back to clone, which is filtered
        if seccomp.seccomp_load(context) != 0:
            raise OSError(ctypes.get_errno(), "seccomp_load")
    finally:
        seccomp.seccomp_release(context)
    return True


def _rule(seccomp: Any, context: int, action: int, call: str, *comparisons: ScmpArgCmp) -> None:
    number = seccomp.seccomp_syscall_resolve_name(call.encode())
    if number < 0:  # this architecture has no such call
        return
    array = (ScmpArgCmp * len(comparisons))(*comparisons) if comparisons else None
    if seccomp.seccomp_rule_add_array(ctypes.c_void_p(context), action, number, len(comparisons), array) != 0:
        raise OSError(ctypes.get_errno(), f"seccomp_rule_add {call}")


def main() -> None:
    settings = json.loads(sys.argv[1])
    set_limits(settings)
    source = sys.stdin.read()  # read before the walls: stdin stays a pipe, but nothing more is needed from outside
    seccomp = load_seccomp(settings.get("seccomp_library")) if "seccomp" in settings["layers"] else None
    layers = ["rlimits"]
    abi = apply_landlock(settings["readable"], settings["workdir"]) if "landlock" in settings["layers"] else 0
    if abi:
        layers.append(f"landlock-abi-{abi}")
    if apply_seccomp(seccomp):
        layers.append("seccomp")
    sys.stderr.write(f"dfqs-jail: {' '.join(layers)}\n")
    sys.stderr.flush()
    os.chdir(settings["workdir"])
    exec(compile(source, "<candidate>", "exec"), {"__name__": "__main__"})


if __name__ == "__main__":
    main()
