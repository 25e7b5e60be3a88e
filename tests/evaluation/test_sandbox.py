"""Model-written code against the sandbox, as an attacker writes it: every escape ends contained.

Each attack must end failed, killed or timed out, with nothing changed outside
its temporary directory (the file system is checked afterwards) and no process
of it left running. These run on this machine's strongest isolation
(`isolation_layers`); the layers in force are asserted, so a machine that
offers fewer makes these tests say so rather than pass on less.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_dfqs.evaluation.sandbox import JAIL, isolation_layers, run_sandboxed
from tests.conftest import Certification

pytestmark = pytest.mark.timeout(120)
WALLS = ("namespaces", "landlock", "seccomp")


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[Path]:
    """A folder outside the sandbox with a precious file; checked unchanged, and no jail process left, after each attack."""
    (tmp_path / "precious.txt").write_text("keep me")
    before = sorted(p.name for p in tmp_path.iterdir())
    yield tmp_path
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (tmp_path / "precious.txt").read_text() == "keep me"
    assert _jail_processes() == []


def _jail_processes() -> list[str]:
    listing = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout.splitlines()
    return [line for line in listing if str(JAIL) in line]


def contained(program: str, **limits: float) -> str:
    """How the attack ended; it must not have run to its end, and every wall must have stood."""
    missing = [layer for layer in WALLS if layer not in isolation_layers()]
    if missing:
        pytest.skip(f"this machine offers no {', '.join(missing)}: the red-team suite needs every wall")
    result = run_sandboxed(program, **limits)  # type: ignore[arg-type]
    assert result.status in ("failed", "killed", "timeout"), f"the attack ran to its end: {program}"
    assert {"namespaces", "rlimits", "seccomp"} <= set(result.layers) and any(layer.startswith("landlock") for layer in result.layers)
    return result.detail


def test_a_correct_program_passes_and_a_wrong_one_fails() -> None:
    assert run_sandboxed("assert sorted([3, 1, 2]) == [1, 2, 3]").passed
    failed = run_sandboxed("assert 1 + 1 == 3")
    assert failed.status == "failed" and failed.detail == "AssertionError"


def test_a_program_keeps_its_own_files_threads_and_standard_library() -> None:
    program = (
        "import json, math, threading, collections\n"
        "open('scratch.txt', 'w').write('ok')\nassert open('scratch.txt').read() == 'ok'\n"
        "t = threading.Thread(target=lambda: None); t.start(); t.join()\n"
    )
    assert run_sandboxed(program).passed


def test_an_infinite_loop_is_killed() -> None:
    result = run_sandboxed("while True:\n    pass\n", timeout_s=2)
    # whichever comes first: the wall-clock limit, or the CPU-seconds limit (SIGXCPU) on a loaded machine
    assert (result.status, result.detail) in (("timeout", "killed after 2 s"), ("killed", "signal SIGXCPU")) and result.seconds < 10
    assert _jail_processes() == []


def test_a_memory_bomb_hits_the_limit() -> None:
    result = run_sandboxed("blocks = []\nwhile True:\n    blocks.append(bytearray(50 << 20))\n", memory_bytes=256 << 20)
    assert result.status == "failed" and "MemoryError" in result.detail


def test_the_audit_hook_escape_of_the_issue_is_contained(outside: Path) -> None:
    """The attack that beat the in-process sandbox: find the policy's globals (gc, frames), clear them, then act."""
    program = (
        "import gc, os, subprocess, sys\n"
        "for thing in gc.get_objects():\n"
        "    if isinstance(thing, dict) and 'BLOCKED' in thing:\n"
        "        thing['BLOCKED'].clear(); thing['CHANGES'].clear()\n"
        "frame = sys._getframe()\n"
        "while frame.f_back is not None:\n"
        "    frame = frame.f_back\n"
        f"os.chdir({str(outside)!r})\n"
        "open('escaped.txt', 'w').write('out')\n"
    )
    assert "Permission denied" in contained(program)
    assert "Operation not permitted" in contained(f"import subprocess\nsubprocess.run(['touch', {str(outside / 'ran')!r}])")
    assert "AssertionError" in contained(f"import os\nassert os.system('touch {outside / 'ran'}') == 0")


def test_modules_already_imported_give_no_way_out(outside: Path) -> None:
    program = (
        f"import sys\nsys.modules['os'].system('touch {outside / 'x'}')\nsys.modules['posix'].unlink({str(outside / 'precious.txt')!r})"
    )
    assert "PermissionError" in contained(program)


def test_raw_file_descriptors_and_deletions_are_refused(outside: Path) -> None:
    victim = str(outside / "precious.txt")
    assert "PermissionError" in contained(f"import os\nos.open({str(outside / 'new')!r}, os.O_WRONLY | os.O_CREAT, 0o644)")
    assert "PermissionError" in contained(f"import os\nos.open({victim!r}, os.O_RDWR | os.O_TRUNC)")
    assert "PermissionError" in contained(f"import shutil\nshutil.rmtree({str(outside)!r})")
    assert "PermissionError" in contained(f"import os\nos.rename({victim!r}, 'stolen.txt')")


def test_ctypes_reaches_no_further_than_python(outside: Path) -> None:
    program = f"import ctypes\nlibc = ctypes.CDLL(None)\nassert libc.system(b'touch {outside / 'c'}') == 0, 'system'\n"
    assert "system" in contained(program)
    victim = str(outside / "precious.txt").encode()
    unlink = f"import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nassert libc.unlink({victim!r}) == 0, 'unlink'"
    assert "unlink" in contained(unlink)


def test_its_own_memory_and_other_processes_are_out_of_reach() -> None:
    assert "PermissionError" in contained("open('/proc/self/mem', 'r+b')")
    ptrace = "import ctypes\nassert ctypes.CDLL(None).ptrace(16, 1, 0, 0) == 0, 'ptrace attach'"  # PTRACE_ATTACH
    assert "ptrace attach" in contained(ptrace)


def test_a_fork_bomb_cannot_start() -> None:
    assert "Operation not permitted" in contained("import os\nwhile True:\n    os.fork()\n", timeout_s=5)
    assert _jail_processes() == []


def test_no_network() -> None:
    assert "Operation not permitted" in contained("import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=2)")


def test_signals_reach_neither_the_parent_nor_pytest() -> None:
    here = os.getpid()
    contained(f"import os, signal\nos.kill({here}, signal.SIGTERM)\nos.kill(os.getppid() or 1, signal.SIGKILL)\nraise SystemExit(1)")
    assert os.getpid() == here  # this process is still here, and was not signalled (pytest would have stopped)


def test_a_symlink_planted_in_the_temporary_directory_leads_nowhere(outside: Path) -> None:
    program = f"import os\nos.symlink({str(outside / 'precious.txt')!r}, 'link')\nopen('link', 'w').write('gone')"
    assert "PermissionError" in contained(program)


def test_the_model_folder_and_home_are_unreadable(moe_model: Path) -> None:
    secret = Path.home() / ".dfqs-red-team-secret"
    secret.write_text("secret")
    try:
        assert "PermissionError" in contained(f"open({str(moe_model)!r}, 'rb').read(4)")
        assert "PermissionError" in contained(f"print(open({str(secret)!r}).read())")
        assert "PermissionError" in contained(f"import os\nprint(os.listdir({str(Path.home())!r}))")
    finally:
        secret.unlink()


@pytest.mark.timeout(900)
def test_without_an_os_wall_code_is_run_only_on_the_users_word(
    certify: Certification, runtime_moe_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A machine offering no namespaces, Landlock or seccomp (DFQS_SANDBOX_LAYERS keeps none): no silent weak mode."""
    monkeypatch.setenv("DFQS_SANDBOX_LAYERS", "")
    quick = (f"--dfqs-model={runtime_moe_model}", "--dfqs-tier=eval", "--dfqs-eval-budget=quick", "-p", "no:cacheprovider")
    refused = certify.run(*quick, "-k", "DFQS-11")
    assert refused.ret == 0
    reason = certify.clause("DFQS-11.1")["reason"]
    assert certify.clause("DFQS-11.1")["status"] == "NOT EVALUATED" and "no operating-system isolation" in reason
    assert "--dfqs-allow-unsandboxed-code" in reason and certify.certificate()["verdict"] == "INCOMPLETE"
    allowed = certify.run(*quick, "-k", "DFQS-11", "--dfqs-allow-unsandboxed-code", f"--dfqs-metrics={certify.report.with_name('m.json')}")
    allowed.stdout.fnmatch_lines(["*WARNING: model-written code runs WITHOUT operating-system isolation (--dfqs-allow-unsandboxed-code)*"])
    code = json.loads(certify.report.with_name("m.json").read_text())["conditions"]["prompt_sets"]["code"]
    assert code["isolation"] == ["rlimits"] and code["unsandboxed_by_choice"] is True
    assert certify.clause("DFQS-11.1")["status"] == "MET"
