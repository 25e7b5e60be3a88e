"""The eval tier's time estimate against its wall time, on SmolLM2 at the quick and standard budgets.

After the CPU generation check the plugin prints how long the planned work left takes (`workplan.eta_line`); this
runs the eval tier, notes when that line arrives and when the run ends, and reports the estimate over the time the
rest took (issue 25: within 20%).

Run with: pytest benchmarks/test_eta_accuracy.py -m benchmark -s
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.benchmark
ETA = re.compile(r"the planned work left takes about (?:(\d+) min )?(\d+) s")


def estimate_and_wall(model: Path, folder: Path, budget: str) -> tuple[float, float, str]:
    """The seconds the ETA line announces, the seconds from that line to the run's end, and the line."""
    args = [sys.executable, "-m", "pytest", f"--dfqs-model={model}", "--dfqs-tier=eval", f"--dfqs-eval-budget={budget}"]
    child = subprocess.Popen([*args, "-p", "no:cacheprovider"], cwd=folder, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    announced, line = 0.0, ""
    for output in child.stdout:
        if (found := ETA.search(output)) and not announced:
            announced, line = time.perf_counter(), output.strip()
            estimate = int(found[1] or 0) * 60 + int(found[2])
    child.wait()
    assert announced, "the run printed no time estimate"
    return estimate, time.perf_counter() - announced, line


@pytest.mark.parametrize("budget", ["quick", "standard"])
def test_the_time_estimate_against_the_eval_tiers_wall_time(benchmark, smollm2: Path, budget: str, tmp_path: Path) -> None:
    estimate, wall, line = benchmark.pedantic(lambda: estimate_and_wall(smollm2, tmp_path, budget), rounds=1, iterations=1)
    benchmark.extra_info.update({"estimate_seconds": estimate, "wall_seconds": wall, "ratio": estimate / wall})
    print(f"\n{budget}: {line}\n  estimated {estimate:.0f} s, took {wall:.0f} s: x{estimate / wall:.2f}")
    assert estimate > 0 and wall > 0
