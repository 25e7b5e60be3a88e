"""The work plan at the reference model's scale: the DeepSeek-V4-Flash-shaped header (61.6 GB, a sparse file) planned
at every budget, from the header alone (its vocabulary gives no token: the plan says it estimates)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deepseek_sized import deepseek_sized_header, write_sparse
from tests.machine_speed import scaled

UNITS = {"": 1, "K": 1e3, "M": 1e6, "B": 1e9}
TOTAL = re.compile(r"about (?P<count>[\d.]+)(?P<unit>[KMB]?) prompt tokens computed")
CURVE = re.compile(r"context_stability_curve \((?P<lengths>\d+) lengths\) ~(?P<count>[\d.]+)(?P<unit>[KMB]?) \+ 0")


def planned(match: re.Match[str]) -> float:
    return float(match["count"]) * UNITS[match["unit"]]


@pytest.fixture(scope="module")
def reference_shaped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sparse(tmp_path_factory.mktemp("sized") / "ds4-sized.gguf", deepseek_sized_header())


@pytest.mark.parametrize(("budget", "lengths", "most"), [("quick", 3, 100_000), ("standard", 6, 150_000), ("full", 12, 1_500_000)])
def test_the_reference_shaped_plan_fits_each_budget(reference_shaped: Path, tmp_path: Path, budget: str, lengths: int, most: int) -> None:
    """The full budget's curve reaches the declared 1,048,576 tokens once (not once per depth): under 1.5M prompt tokens."""
    command = [sys.executable, "-m", "pytest", f"--dfqs-model={reference_shaped}", "--dfqs-tier=eval", f"--dfqs-eval-budget={budget}"]
    output = subprocess.run(
        [*command, "--collect-only", "-p", "no:cacheprovider"], cwd=tmp_path, capture_output=True, text=True, timeout=scaled(300)
    ).stdout
    plan = next(line for line in output.splitlines() if line.startswith("dfqs plan for ds4-sized.gguf"))
    assert "(estimated at 4 characters a token: its vocabulary gives no token for the standard prompt)" in plan
    curve, total = CURVE.search(plan), TOTAL.search(plan)
    assert curve is not None and total is not None, plan
    assert int(curve["lengths"]) == lengths and planned(total) < most, plan
    if budget == "full":
        assert 1 << 20 <= planned(curve) < 1.1 * (1 << 20), plan  # the haystack's million tokens and a question per fact
