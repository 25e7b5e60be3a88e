"""The metrics record: schema, finiteness, conditions comparison, the stability curve's rules."""

from __future__ import annotations

import copy
import math

import pytest

from pytest_dfqs.context_stability import StabilityResult, cliffs, context_lengths
from pytest_dfqs.metrics import differing_conditions, record_problems, side_by_side

SHA = "a" * 64
RECORD = {
    "format": "dfqs-metrics",
    "format_version": 1,
    "datetime": "2026-11-23T04:00:00+00:00",
    "model": {"file_name": "m.gguf", "sha256": SHA},
    "reasoning_score": 0.5,
    "code_score": 0.1,
    "context_stability_curve": [1.0, 0.9, 0.8],
    "cpu_tokens_per_sec": 150.0,
    "failure_boundary_tokens": 2048,
    "conditions": {
        "prompt_sets": {
            "reasoning": {"id": "dfqs-reasoning-v1", "sha256": SHA},
            "code": {"id": "openai-humaneval", "sha256": SHA},
            "context": {"id": "dfqs-context-v1", "sha256": SHA},
        },
        "budget": "quick", "runtime": "llama.cpp", "backend": "CPU", "llama_cpp_python": "0.3.36", "llama_cpp_build": "CPU",
        "threads": 2, "ctx": 4096, "sampling": {"decoding": "greedy", "temperature": 0.0, "top_k": 1}, "seed": 1,
        "cpu": "x86", "model_sha256": SHA,
    },
    "details": {},
}


def changed(path: tuple, value) -> dict:
    record = copy.deepcopy(RECORD)
    target = record
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return record


def test_a_complete_record_is_valid() -> None:
    assert record_problems(RECORD) == []


@pytest.mark.parametrize(("path", "value", "message"), [
    (("code_score",), KeyError, "(record): 'code_score' is a required property"),
    (("failure_boundary_tokens",), 2048.5, "failure_boundary_tokens: 2048.5 is not of type 'integer'"),
    (("context_stability_curve",), 1.0, "context_stability_curve: 1.0 is not of type 'array'"),
    (("reasoning_score",), "0.5", "reasoning_score: '0.5' is not of type 'number'"),
    (("cpu_tokens_per_sec",), math.nan, "cpu_tokens_per_sec: nan is not finite"),
    (("context_stability_curve",), [1.0, math.inf], "context_stability_curve: inf is not finite"),
    (("conditions", "budget"), "huge", "conditions/budget: 'huge' is not one of ['quick', 'standard', 'full']"),
])
def test_bad_records_are_rejected_with_a_clear_message(path: tuple, value, message: str) -> None:
    assert message in record_problems(changed(path, value))


def test_conditions_comparison_lists_the_differing_fields() -> None:
    other = changed(("conditions", "threads"), 8)
    other["conditions"]["prompt_sets"]["reasoning"]["sha256"] = "b" * 64
    assert differing_conditions(RECORD["conditions"], other["conditions"]) == ["prompt_sets.reasoning.sha256", "threads"]
    another_model = changed(("conditions", "model_sha256"), "c" * 64)
    assert differing_conditions(RECORD["conditions"], another_model["conditions"]) == []


def test_side_by_side_deltas() -> None:
    rows = side_by_side(changed(("reasoning_score",), 0.75), RECORD)
    assert rows[0] == {"metric": "reasoning_score", "model": 0.75, "baseline": 0.5, "delta": 0.25}
    assert [r["metric"] for r in rows][2] == "context_stability_curve[-1]"


def test_stability_curve_boundary_and_cliffs() -> None:
    gradual = StabilityResult([512, 1024, 2048, 4096], [0.8, 0.7, 0.6, 0.5])
    assert gradual.curve == pytest.approx([1.0, 0.875, 0.75, 0.625]) and gradual.boundary() == (4096, True)
    assert cliffs(gradual) == []
    cliff = StabilityResult([512, 1024, 2048, 4096], [0.8, 0.78, 0.2, 0.19])
    assert cliff.boundary() == (2048, False)
    assert cliffs(cliff) == ["1,024 -> 2,048 tokens: quality 0.975 -> 0.250"]
    crashed = StabilityResult([512, 1024], [0.8, 0.79], failure={"length": 2048, "error": "worker died"})
    assert crashed.boundary() == (2048, False)


def test_tested_lengths() -> None:
    assert context_lengths(8192, 2048) == [512, 1024, 2048]
    assert context_lengths(4096, 1 << 40) == [512, 1024, 2048, 4096]
    assert context_lengths(None, 2048) == [512]


def test_lengths_beyond_memory_are_not_attempted(runtime_moe_model) -> None:
    from pytest_dfqs.context_stability import measure
    from pytest_dfqs.gguf_header import read_header
    from pytest_dfqs.runtime import ModelRuntime, RuntimeOptions

    runtime = ModelRuntime(runtime_moe_model, read_header(runtime_moe_model), RuntimeOptions(threads=2, ctx=1024))
    try:
        result = measure(runtime, [512, 1 << 36], (0.5,), threads=2)
    finally:
        runtime.close()
    assert result.lengths == [512] and result.failure is None
    assert result.memory_limit["length"] == 1 << 36 and result.memory_limit["needs_bytes"] > result.memory_limit["available_bytes"]
    assert result.boundary() == (512, True)
