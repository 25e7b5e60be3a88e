"""A user's certification run carries no noise of this repository's or of pytest-benchmark's: the demo at each tier
with pytest's own warnings as errors, no benchmark header, table or `.benchmarks/` folder nobody asked for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import QUIET, TerminalRun
from tests.machine_speed import llama_threads, scaled

ROOT = Path(__file__).resolve().parent.parent


def certify_demo(folder: Path, *options: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest", "--dfqs-model=demo", *QUIET, *options]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=scaled(900))


def noise(said: str, folder: Path) -> list[str]:
    found = [marker for marker in ("warnings summary", "Warning:", "benchmark:", "Benchmark", "Traceback") if marker in said]
    return found + ([".benchmarks/"] if (folder / ".benchmarks").exists() else [])


def test_the_static_tier_in_this_repository_without_the_test_extras_is_quiet() -> None:
    """Run where `git clone` puts it, without pytest-timeout: the repository's tests/conftest.py adds no mark it cannot
    know to the conformance suite."""
    had_benchmarks = (ROOT / ".benchmarks").exists()
    run = certify_demo(ROOT, "-p", "no:timeout")
    assert run.returncode == 0, run.stdout[-3000:]
    assert noise(run.stdout + run.stderr, ROOT) == ([".benchmarks/"] if had_benchmarks else []), run.stdout[-3000:]


@pytest.mark.timeout(900)
def test_the_runtime_tier_is_quiet_unless_benchmarks_are_asked_for(demo_runtime_tier: TerminalRun) -> None:
    """The demo's runtime tier of the session, as a person runs it in a terminal (tests/conftest.py)."""
    folder, status, said = demo_runtime_tier.folder, demo_runtime_tier.status, "\n".join(demo_runtime_tier.lines)
    assert status == 0, said[-3000:]
    assert noise(said, folder) == [], said[-3000:]
    assert "verdict: " in said


@pytest.mark.timeout(900)
def test_the_eval_tier_is_quiet_unless_benchmarks_are_asked_for(tmp_path: Path) -> None:
    """The runtime tier's checks are quiet above; here its 65,537-token fill (decode-past-64k) is left out."""
    run = certify_demo(
        tmp_path, "--dfqs-tier=eval", "--dfqs-eval-budget=quick", f"--dfqs-threads={llama_threads()}", "-k", "not decode-past-64k"
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert noise(run.stdout + run.stderr, tmp_path) == [], run.stdout[-3000:]
    assert "verdict: " in run.stdout
