"""DFQS-3.5: evaluation SHOULD include long-context degradation analysis.

Decided from the context stability curve the evaluation measured: MET when
the curve exists and declines gradually, with no drop between adjacent
lengths, up to the failure boundary, larger than CLIFF_DROP of the previous
value. The routing pressure curves (section 10) travel in the evidence, with
their plot beside the metrics record: how expert routing moves as the context
fills.
"""

from __future__ import annotations

from typing import Any

from pytest_dfqs.evaluation.context_stability import StabilityResult
from pytest_dfqs.evaluation.orchestrator import evaluation
from pytest_dfqs.evaluation.routing_pressure import plot_pressure
from pytest_dfqs.model import ModelUnderTest
from pytest_dfqs.verdict import Finding, Status

CLIFF_DROP = 0.5


def cliffs(result: StabilityResult) -> list[str]:
    """Drops larger than CLIFF_DROP between adjacent lengths, up to and into the failure boundary."""
    boundary, _ = result.boundary()
    curve = result.curve
    return [
        f"{result.lengths[i]:,} -> {result.lengths[i + 1]:,} tokens: quality {curve[i]:.3f} -> {curve[i + 1]:.3f}"
        for i in range(len(curve) - 1)
        if result.lengths[i + 1] <= boundary and curve[i + 1] < curve[i] * (1 - CLIFF_DROP)
    ]


def routing_pressure(model: ModelUnderTest, record: dict[str, Any]) -> dict[str, Any]:
    """The routing pressure curves and their plot, drawn beside the metrics record when there is one."""
    path = model.eval_options.metrics_path
    plot = plot_pressure(record, path.with_name(f"{path.stem}-routing-pressure.png")) if path else None
    return {"routing_pressure": record["details"]["routing_pressure"], "routing_pressure_plot": str(plot) if plot else None}


def check_long_context_curve(model: ModelUnderTest) -> Finding:
    record = evaluation(model)
    details = record["details"]["context_stability"]
    result = StabilityResult(details["lengths"], details["quality"], details["retrieved"], details["failure"], details["memory_limit"])
    evidence = {**details, "curve": result.curve, "cliff_drop": CLIFF_DROP, **routing_pressure(model, record)}
    if len(result.curve) < 2:
        return Finding(
            "long-context-curve",
            Status.NOT_MET,
            f"the curve has {len(result.curve)} point(s): no degradation analysis is possible",
            evidence,
        )
    found = cliffs(result)
    if found:
        return Finding("long-context-curve", Status.NOT_MET, f"quality falls off a cliff at {found[0]}", evidence)
    return Finding(
        "long-context-curve",
        Status.MET,
        f"quality declines gradually over {len(result.lengths)} lengths ({result.lengths[0]:,} to"
        f" {result.lengths[-1]:,} tokens): no drop over {CLIFF_DROP:.0%} between neighbours",
        evidence,
    )
