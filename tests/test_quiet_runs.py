"""A user's certification run carries no noise of this repository's or of pytest-benchmark's: the demo at each tier
with pytest's own warnings as errors, no benchmark header, table or `.benchmarks/` folder nobody asked for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.machine_speed import llama_threads, scaled

ROOT = Path(__file__).resolve().parent.parent
STRICT = ["-W", "error::pytest.PytestWarning", "-p", "no:cacheprovider"]


def certify_demo(folder: Path, *options: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest", "--dfqs-model=demo", *STRICT, *options]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=scaled(900))


def noise(run: subprocess.CompletedProcess[str], folder: Path) -> list[str]:
    said = run.stdout + run.stderr
    found = [marker for marker in ("warnings summary", "Warning:", "benchmark:", "Benchmark", "Traceback") if marker in said]
    return found + ([".benchmarks/"] if (folder / ".benchmarks").exists() else [])


def test_the_static_tier_in_this_repository_without_the_test_extras_is_quiet() -> None:
    """Run where `git clone` puts it, without pytest-timeout: the repository's tests/conftest.py adds no mark it cannot
    know to the conformance suite."""
    had_benchmarks = (ROOT / ".benchmarks").exists()
    run = certify_demo(ROOT, "-p", "no:timeout")
    assert run.returncode == 0, run.stdout[-3000:]
    assert noise(run, ROOT) == ([".benchmarks/"] if had_benchmarks else []), run.stdout[-3000:]


@pytest.mark.timeout(900)
@pytest.mark.parametrize("tier", ["runtime", "eval"])
def test_the_runtime_and_eval_tiers_are_quiet_unless_benchmarks_are_asked_for(tmp_path: Path, tier: str) -> None:
    run = certify_demo(tmp_path, f"--dfqs-tier={tier}", "--dfqs-eval-budget=quick", f"--dfqs-threads={llama_threads()}")
    assert run.returncode == 0, run.stdout[-3000:]
    assert noise(run, tmp_path) == [], run.stdout[-3000:]
    assert "verdict: " in run.stdout
