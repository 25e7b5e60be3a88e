"""The metrics record: schema, finiteness, conditions comparison, side by side."""

from __future__ import annotations

import copy
import math

import pytest

from pytest_dfqs.evaluation.record import METRICS_VERSION, REQUIRED, differing_conditions, record_problems, side_by_side

SHA = "a" * 64
RECORD = {
    "format": "dfqs-metrics",
    "format_version": METRICS_VERSION,
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
        "budget": "quick",
        "runtime": "llama.cpp",
        "backend": "CPU",
        "llama_cpp_python": "0.3.36",
        "llama_cpp_build": "CPU",
        "threads": 2,
        "ctx": 4096,
        "sampling": {"decoding": "greedy", "temperature": 0.0, "top_k": 1},
        "seed": 1,
        "cpu": "x86",
        "model_sha256": SHA,
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


def test_an_interrupted_record_is_well_formed_but_never_valid() -> None:
    """An interrupted run's record validates against the schema (no metrics, its measured items) and says why it is not one."""
    partial = {**RECORD, **dict.fromkeys(REQUIRED), "interrupted": True}
    assert record_problems(partial) == ["the evaluation was interrupted: the record holds the items measured so far, not the five metrics"]
    missing = {**RECORD, "reasoning_score": None}  # only an interrupted record may lack a metric
    assert record_problems(missing) and "reasoning_score" in record_problems(missing)[0]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("code_score",), KeyError, "(record): 'code_score' is a required property"),
        (("failure_boundary_tokens",), 2048.5, "failure_boundary_tokens: 2048.5 is not of type 'integer'"),
        (("context_stability_curve",), 1.0, "context_stability_curve: 1.0 is not of type 'array'"),
        (("reasoning_score",), "0.5", "reasoning_score: '0.5' is not of type 'number'"),
        (("cpu_tokens_per_sec",), math.nan, "cpu_tokens_per_sec: nan is not finite"),
        (("context_stability_curve",), [1.0, math.inf], "context_stability_curve: inf is not finite"),
        (("conditions", "budget"), "huge", "conditions/budget: 'huge' is not one of ['quick', 'standard', 'full']"),
    ],
)
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
