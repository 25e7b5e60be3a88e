"""The context stability curve: one haystack grown once, facts planted at fixed depths, questions asked in a copy.

The normalization, the failure boundary and the tested lengths; the layout of the facts for every budget; that a
question leaves no trace in the haystack (the next question gets the same answer as in a haystack never asked),
on dense, sliding-window and DeepSeek-V4 caches; the prompt tokens the pass computes against a probe per length and
depth; the memory limit.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from pytest_dfqs.evaluation.budget import BUDGETS
from pytest_dfqs.evaluation.context_stability import (
    FAILURE_RATIO,
    StabilityResult,
    context_lengths,
    facts,
    haystack,
    measure,
)
from pytest_dfqs.runtime.client import ModelRuntime, RuntimeOptions
from tests.machine_speed import llama_threads


def test_stability_curve_and_failure_boundary() -> None:
    gradual = StabilityResult([512, 1024, 2048, 4096], [0.8, 0.7, 0.6, 0.5])
    assert gradual.curve == pytest.approx([1.0, 0.875, 0.75, 0.625]) and gradual.boundary() == (4096, True)
    cliff = StabilityResult([512, 1024, 2048, 4096], [0.8, 0.78, 0.2, 0.19])
    assert cliff.boundary() == (2048, False) and cliff.curve[2] < FAILURE_RATIO
    crashed = StabilityResult([512, 1024], [0.8, 0.79], failure={"length": 2048, "error": "worker died"})
    assert crashed.boundary() == (2048, False)


def test_tested_lengths() -> None:
    assert context_lengths(8192, 2048) == [512, 1024, 2048]
    assert context_lengths(4096, 1 << 40) == [512, 1024, 2048, 4096]
    assert context_lengths(None, 2048) == [512]


def test_each_fact_has_its_own_vault_and_code() -> None:
    planted = facts(context_lengths(1 << 40, 1 << 40), BUDGETS["full"].depths)
    assert len(planted) == 32 * 4
    assert len({fact.vault for fact in planted}) == len(planted) and len({fact.code for fact in planted}) == len(planted)


@pytest.mark.parametrize("budget", sorted(BUDGETS))
def test_every_length_holds_a_fact_at_each_of_its_depths(smollm2_runtime: ModelRuntime, budget: str) -> None:
    """SmolLM2's tokens, its declared 8,192-token context (the full budget: up to 1M tokens, DeepSeek-V4-Flash's)."""
    depths = BUDGETS[budget].depths
    lengths = context_lengths(8192 if budget != "full" else 1 << 20, BUDGETS[budget].max_context)
    text = haystack(smollm2_runtime, lengths, depths, lengths[-1])
    assert len(text.tokens) == lengths[-1]
    for length in lengths:
        own = [planted for planted in text.before(length) if planted.fact.length == length]
        assert [planted.fact.depth for planted in own] == list(depths), length
        for planted in own:  # where the depth puts it, pushed at most a fact's length by its neighbour
            assert abs(planted.start / text.point(length) - planted.fact.depth) < 0.05, (length, planted)
    assert all(a.end <= b.start for a, b in zip(text.planted, text.planted[1:]))  # no fact cuts another


def _ask(runtime: ModelRuntime, text_tokens: list[int], asks: list[tuple[int, list[int], list[int]]], asking: int = 0) -> list[list[float]]:
    """Grow a fresh haystack through `text_tokens`, asking each (point, question, answer) from the `asking`-th on when
    it reaches the point (the text grows in the same pieces either way: llama.cpp rounds other batch shapes otherwise)."""
    runtime.request("haystack_begin", n_ctx=2048, n_threads=llama_threads())
    grown, answers = 0, []
    for index, (point, question, answer) in enumerate(asks):
        runtime.request("haystack_grow", tokens=text_tokens[grown:point])
        grown = point
        if index >= asking:
            answers.append(runtime.request("haystack_ask", question=question, answer=answer)["logprobs"])
    return answers


@pytest.mark.parametrize("fixture", ["smollm2", "gemma3", "deepseek4_model"])
def test_a_question_leaves_no_trace(request: pytest.FixtureRequest, fixture: str) -> None:
    """The last question's answer after earlier questions equals its answer in a haystack never asked before: on a
    unified cache (SmolLM2), a sliding-window one (Gemma 3) and DeepSeek-V4's compressed one."""
    runtime = ModelRuntime(request.getfixturevalue(fixture), RuntimeOptions(threads=llama_threads(), ctx=2048))
    try:
        text = haystack(runtime, [512, 1024], (0.25, 0.75), 1024)
        first, later = text.planted[0], text.planted[-1]
        probes = [(text.point(512), first.question, first.answer)] * 2 + [(text.point(1024), later.question, later.answer)]
        asked = _ask(runtime, text.tokens, probes)
        unasked = _ask(runtime, text.tokens, probes, asking=2)
    finally:
        runtime.close()
    assert asked[0] == asked[1]  # the same question at the same point: the first left nothing behind
    assert asked[2] == unasked[0]


def test_one_pass_computes_a_fifth_of_a_probe_per_length_and_depth(smollm2_runtime: ModelRuntime) -> None:
    """The standard budget's three depths on SmolLM2, up to 4,096 tokens (its 8,192 double the time and show nothing
    more): the text once and a question per length and fact, where a probe per length and depth computed every length
    three times."""
    budget = BUDGETS["standard"]
    lengths = context_lengths(4096, budget.max_context)
    result = measure(smollm2_runtime, lengths, budget.depths)
    assert result.lengths == lengths and result.failure is None and result.memory_limit is None
    assert result.retrieved[0] > 0 and result.curve[0] == 1.0 and len(result.recall) == len(lengths)
    per_probe = sum(lengths) * len(budget.depths)
    assert lengths[-1] < result.prompt_tokens_computed <= 0.25 * per_probe, (result.prompt_tokens_computed, per_probe)


def test_lengths_beyond_memory_are_not_attempted(runtime_moe_model: Path) -> None:
    runtime = ModelRuntime(runtime_moe_model, RuntimeOptions(threads=llama_threads(), ctx=1024))
    try:
        result = measure(runtime, [512, 1 << 36], (0.5,))
    finally:
        runtime.close()
    assert result.lengths == [512] and result.failure is None
    assert result.memory_limit["length"] == 1 << 36 and result.memory_limit["needs_bytes"] > result.memory_limit["available_bytes"]
    assert result.boundary() == (512, True)


def test_a_worker_that_dies_mid_pass_ends_the_curve_there_with_what_was_measured(runtime_moe_model: Path) -> None:
    """llama.cpp killed (SIGKILL) as the haystack grows past 512 tokens, once that length's questions are answered:
    the curve keeps 512 and the failure boundary is the length it could not reach."""
    runtime = ModelRuntime(runtime_moe_model, RuntimeOptions(threads=llama_threads(), ctx=2048))
    answered: list[str] = []
    forward = runtime.request

    def request(op: str, **args: Any) -> Any:
        if op == "haystack_grow" and answered:
            os.kill(runtime.loaded()["pid"], signal.SIGKILL)
        if op == "haystack_ask":
            answered.append(op)
        return forward(op, **args)

    runtime.request = request  # type: ignore[method-assign]
    try:
        result = measure(runtime, [512, 1024, 2048], (0.25, 0.75))
    finally:
        runtime.close()
    assert result.lengths == [512] and len(result.quality) == 1 and answered
    assert result.failure is not None and result.failure["length"] == 1024 and "SIGKILL" in result.failure["error"]
    assert result.boundary() == (1024, False)
