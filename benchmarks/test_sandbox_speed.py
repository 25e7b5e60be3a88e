"""What the walls cost a model-written program: the jail against a bare isolated Python, in one run.

Run with: pytest benchmarks/test_sandbox_speed.py -m benchmark -s
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from benchmarks.measure import best_of
from pytest_dfqs.evaluation.sandbox import isolation_layers, run_sandboxed

pytestmark = pytest.mark.benchmark
PROGRAM = "def add(a, b):\n    return a + b\n\nassert add(2, 3) == 5\n"
ROUNDS = 20


def bare() -> None:
    """The program in a fresh isolated Python with no walls: what any separate-process runner pays."""
    subprocess.run([sys.executable, "-I", "-c", "import sys; exec(sys.stdin.read())"], input=PROGRAM, text=True, check=True)


def test_the_walls_add_at_most_50_ms_per_program(benchmark) -> None:
    unwalled = best_of(ROUNDS, bare)
    walled = benchmark.pedantic(lambda: best_of(ROUNDS, lambda: run_sandboxed(PROGRAM)), rounds=1, iterations=1)
    added_ms = (walled - unwalled) * 1000
    benchmark.extra_info.update({"bare_s": unwalled, "walled_s": walled, "added_ms": added_ms, "layers": list(isolation_layers())})
    layers = ", ".join(isolation_layers())
    print(f"\nbare isolated Python {unwalled * 1000:.1f} ms, walled ({layers}) {walled * 1000:.1f} ms: +{added_ms:.1f} ms")
    assert added_ms <= 50
