"""Generated code runs in a limited separate process: loops, memory bombs and file deletions are contained."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_dfqs.evaluation.sandbox import run_sandboxed

pytestmark = pytest.mark.timeout(60)


def test_a_correct_program_passes_and_a_wrong_one_fails() -> None:
    assert run_sandboxed("assert sorted([3, 1, 2]) == [1, 2, 3]").passed
    failed = run_sandboxed("assert 1 + 1 == 3")
    assert failed.status == "failed" and failed.detail == "AssertionError"


def test_an_infinite_loop_is_killed() -> None:
    result = run_sandboxed("while True:\n    pass\n", timeout_s=2)
    # whichever comes first: the wall-clock limit, or the CPU-seconds limit (SIGXCPU) on a loaded machine
    assert (result.status, result.detail) in (("timeout", "killed after 2 s"), ("killed", "signal SIGXCPU")) and result.seconds < 10


def test_a_memory_bomb_hits_the_limit() -> None:
    result = run_sandboxed("blocks = []\nwhile True:\n    blocks.append(bytearray(50 << 20))\n", memory_bytes=256 << 20)
    assert result.status == "failed" and "MemoryError" in result.detail


def test_deleting_files_outside_the_sandbox_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    for program in (
        f"import os\nos.remove({str(victim)!r})",
        f"import shutil\nshutil.rmtree({str(tmp_path)!r})",
        f"open({str(victim)!r}, 'w').write('gone')",
    ):
        result = run_sandboxed(program)
        assert result.status == "failed" and "PermissionError" in result.detail
    assert victim.read_text() == "keep me"


def test_the_model_file_is_off_limits(moe_model: Path) -> None:
    result = run_sandboxed(f"open({str(moe_model)!r}, 'rb').read(4)", forbidden=(moe_model.parent,))
    assert result.status == "failed" and "off limits" in result.detail


def test_processes_and_own_files(tmp_path: Path) -> None:
    assert "not allowed" in run_sandboxed("import subprocess\nsubprocess.run(['true'])").detail
    assert run_sandboxed("open('scratch.txt', 'w').write('ok')\nassert open('scratch.txt').read() == 'ok'").passed


def test_raw_process_and_library_modules_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "escaped.txt"
    program = (
        "import _posixsubprocess, os\n"
        f"_posixsubprocess.fork_exec([b'/bin/sh'], [b'/bin/sh', b'-c', b'touch {marker}'], True, (), None, None,"
        " -1, -1, -1, -1, -1, -1, -1, -1, True, False, -1, None, None, None, -1, None, False)\n"
    )
    result = run_sandboxed(program)
    assert result.status == "failed" and "importing _posixsubprocess is not allowed" in result.detail
    assert "importing ctypes is not allowed" in run_sandboxed("import ctypes").detail
    assert not marker.exists()
