"""The context stability curve: normalization, failure boundary, tested lengths, the memory limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_dfqs.evaluation.context_stability import StabilityResult, context_lengths, measure
from pytest_dfqs.runtime.client import ModelRuntime, RuntimeOptions


def test_stability_curve_and_failure_boundary() -> None:
    gradual = StabilityResult([512, 1024, 2048, 4096], [0.8, 0.7, 0.6, 0.5])
    assert gradual.curve == pytest.approx([1.0, 0.875, 0.75, 0.625]) and gradual.boundary() == (4096, True)
    cliff = StabilityResult([512, 1024, 2048, 4096], [0.8, 0.78, 0.2, 0.19])
    assert cliff.boundary() == (2048, False)
    crashed = StabilityResult([512, 1024], [0.8, 0.79], failure={"length": 2048, "error": "worker died"})
    assert crashed.boundary() == (2048, False)


def test_tested_lengths() -> None:
    assert context_lengths(8192, 2048) == [512, 1024, 2048]
    assert context_lengths(4096, 1 << 40) == [512, 1024, 2048, 4096]
    assert context_lengths(None, 2048) == [512]


def test_lengths_beyond_memory_are_not_attempted(runtime_moe_model: Path) -> None:
    runtime = ModelRuntime(runtime_moe_model, RuntimeOptions(threads=2, ctx=1024))
    try:
        result = measure(runtime, [512, 1 << 36], (0.5,))
    finally:
        runtime.close()
    assert result.lengths == [512] and result.failure is None
    assert result.memory_limit["length"] == 1 << 36 and result.memory_limit["needs_bytes"] > result.memory_limit["available_bytes"]
    assert result.boundary() == (512, True)
