"""Routing under pressure: the points, row attribution, the agreement measure, both curves on real llama.cpp, the record."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pytest_dfqs.clauses.long_context import check_long_context_curve
from pytest_dfqs.evaluation.budget import BUDGETS
from pytest_dfqs.evaluation.journal import Journal
from pytest_dfqs.evaluation.orchestrator import evaluate
from pytest_dfqs.evaluation.record import record_problems
from pytest_dfqs.evaluation.routing_pressure import Agreement, PressurePoints, measure_pressure, pressure_points
from pytest_dfqs.model import EvalOptions, ModelUnderTest
from pytest_dfqs.runtime.client import ModelRuntime, RuntimeOptions
from pytest_dfqs.runtime.traces import TraceMismatch
from pytest_dfqs.verdict import Finding
from tests.conftest import SharedRun
from tests.machine_speed import llama_threads

pytestmark = pytest.mark.timeout(600)
SMALL = replace(BUDGETS["quick"], reasoning_items=2, code_problems=1, depths=(0.5,), throughput_rounds=1, throughput_tokens=4)
MOE_LAYERS = {"runtime_moe_model": 2, "deepseek4_model": 4}


def test_points_follow_the_runtime_context_and_the_budget() -> None:
    assert pressure_points(4096, BUDGETS["quick"]) == PressurePoints((0, 512, 1024, 2048), (1, 2, 4))
    assert pressure_points(4096, BUDGETS["standard"]) == PressurePoints((0, 512, 1024, 2048), (1, 2, 4, 8))
    assert pressure_points(4096, BUDGETS["full"]).sequences == (1, 2, 4, 8, 16)
    assert pressure_points(32768, BUDGETS["standard"]).fills[-1] == 16384  # the budget's limit
    assert pressure_points(32768, BUDGETS["full"]).fills[-1] == 16384  # 32,768 leaves no room for the prompt
    assert pressure_points(512, BUDGETS["full"]).fills == (0,)


def test_agreement_is_equal_sets_and_jaccard_is_their_overlap() -> None:
    agreement = Agreement()
    agreement.compare({0: [[1, 2], [0, 3]], 1: [[2, 3], [0, 1]]}, {0: [[2, 1], [0, 1]], 1: [[2, 3], None]})
    assert agreement.result() == pytest.approx(
        {"agreement": 2 / 3, "jaccard": (1 + 1 / 3 + 1) / 3, "rows": 3, "unattributed": 1, "layers": 2}
    )
    nothing = Agreement()
    nothing.compare({0: [[1, 2]]}, {0: [None]})
    with pytest.raises(TraceMismatch, match="none of the prompts' rows could be attributed"):
        nothing.result()


@pytest.mark.parametrize("fixture", sorted(MOE_LAYERS))
def test_both_curves_on_llama_cpp(request: pytest.FixtureRequest, fixture: str) -> None:
    """Zero fill and one sequence repeat the reference: full agreement; every point a share in [0, 1]."""
    points = pressure_points(4096, BUDGETS["standard"])
    runtime = ModelRuntime(request.getfixturevalue(fixture), RuntimeOptions(threads=llama_threads(), ctx=4096))
    try:
        pressure = measure_pressure(runtime, points)
    finally:
        runtime.close()
    print(f"\n{fixture}: {json.dumps(pressure)}")
    fill, batch = pressure["fill"], pressure["batch"]
    assert pressure["failure"] is None and pressure["layers"] == MOE_LAYERS[fixture]
    assert fill["tokens"] == [0, 512, 1024, 2048] and batch["sequences"] == [1, 2, 4, 8]
    assert len(fill["agreement"]) == len(fill["jaccard"]) == 4 and len(batch["agreement"]) == len(batch["jaccard"]) == 4
    assert fill["agreement"][0] == fill["jaccard"][0] == batch["agreement"][0] == batch["jaccard"][0] == 1.0
    for curve in (fill, batch):
        assert all(0 <= share <= equal_or_overlap <= 1 for share, equal_or_overlap in zip(curve["agreement"], curve["jaccard"]))
    assert pressure["rows_compared"] > 0 and pressure["rows_unattributed"] >= 0
    if fixture == "deepseek4_model":  # its first layer routes by token-id table: a quarter of the rows never move
        assert min(fill["agreement"] + batch["agreement"]) >= 1 / 4


def test_points_are_journaled_and_a_resumed_run_asks_llama_cpp_nothing(runtime_moe_model: Path, tmp_path: Path) -> None:
    points = PressurePoints((0, 512), (1, 2))
    path, conditions = tmp_path / "journal.jsonl", {"budget": "quick"}
    runtime = ModelRuntime(runtime_moe_model, RuntimeOptions(threads=llama_threads(), ctx=4096))
    try:
        first = measure_pressure(runtime, points, Journal(path, conditions))
        asked = runtime.requests_made
        resumed = Journal(path, conditions, resume=True)
        again = measure_pressure(runtime, points, resumed)
    finally:
        runtime.close()
    assert again == first and runtime.requests_made == asked
    assert resumed.reused == {"routing": 4} and len(path.read_text().splitlines()) == 1 + 4


def evaluated(path: Path, metrics: Path) -> tuple[dict[str, Any], Finding]:
    """A small evaluation's record, valid, and DFQS-3.5's finding on it, with --dfqs-metrics at `metrics`."""
    model = ModelUnderTest(path, path.name, threads=llama_threads(), eval_options=EvalOptions("quick", metrics_path=metrics))
    try:
        model.metrics_record = record = evaluate(model, SMALL)
        finding = check_long_context_curve(model)
    finally:
        model.close()
    assert record_problems(record) == []
    return record, finding


def test_the_record_carries_both_curves_and_dfqs_3_5_draws_them(runtime_moe_model: Path, tmp_path: Path) -> None:
    record, finding = evaluated(runtime_moe_model, tmp_path / "metrics.json")
    pressure = record["details"]["routing_pressure"]
    assert set(pressure) >= {"fill", "batch", "layers", "rows_unattributed"} and pressure["layers"] == 2
    assert set(pressure["fill"]) == {"tokens", "agreement", "jaccard"} and set(pressure["batch"]) == {"sequences", "agreement", "jaccard"}
    assert record["conditions"]["prompt_sets"]["routing"]["fills"] == pressure["fill"]["tokens"] == [0, 512, 1024, 2048]
    assert record["conditions"]["prompt_sets"]["routing"]["sequences"] == pressure["batch"]["sequences"] == [1, 2, 4]
    assert finding.evidence["routing_pressure"] == pressure
    plot = Path(finding.evidence["routing_pressure_plot"])
    assert plot == tmp_path / "metrics-routing-pressure.png" and plot.stat().st_size > 10_000


@pytest.mark.parametrize("fixture", ["dense_model", "smollm2_quick_eval"])
def test_a_dense_model_has_no_curves_and_says_why(request: pytest.FixtureRequest, fixture: str, tmp_path: Path) -> None:
    """The tiny dense model evaluated here; SmolLM2's record from its quick evaluation of the session (tests/conftest.py)."""
    if fixture == "smollm2_quick_eval":
        run: SharedRun = request.getfixturevalue(fixture)
        record, folder = json.loads((run.folder / "smollm2.json").read_text()), run.folder
        finding = Finding.from_dict(run.findings("DFQS-3.5")["long-context-curve"])
        assert record_problems(record) == []
    else:
        record, finding = evaluated(request.getfixturevalue(fixture), tmp_path / "metrics.json")
        folder = tmp_path
    reason = record["details"]["routing_pressure"]["reason"]
    assert reason.startswith("not a Mixture-of-Experts model (llama.expert_count is ") and "no expert routing to measure" in reason
    assert "fill" not in record["details"]["routing_pressure"]
    assert finding.evidence["routing_pressure_plot"] is None and not list(folder.glob("*-routing-pressure.png"))
