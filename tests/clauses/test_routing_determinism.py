"""Routing traces from llama.cpp's real graph, and the determinism decision, on tiny MoE models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pytest_dfqs.clauses.routing_determinism import (
    Comparison,
    Load,
    SequenceRun,
    _decide,
    compare_runs,
    run_loads,
    split_sequences,
    standard_loads,
)
from pytest_dfqs.runtime.client import ModelRuntime
from pytest_dfqs.runtime.traces import ROUTING_PROMPTS
from pytest_dfqs.verdict import Status
from tests.conftest import running
from tests.tiny_deepseek4 import N_EXPERT, N_EXPERT_USED, build_tensors

TINY_EXPERTS = 4


@pytest.fixture(scope="module")
def llama_moe(runtime_moe_model: Path) -> Iterator[ModelRuntime]:
    yield from running(runtime_moe_model, 1024)


@pytest.fixture(scope="module")
def deepseek4(deepseek4_model: Path) -> Iterator[ModelRuntime]:
    yield from running(deepseek4_model, 1024)


def traced(runtime: ModelRuntime, prompts: list[str], n_predict: int = 6, n_ubatch: int = 512) -> list[SequenceRun]:
    """On the tests' llama.cpp threads (the runtime's)."""
    result = runtime.request(
        "evaluate",
        prompts=prompts,
        n_predict=n_predict,
        n_ctx=1024,
        n_threads=runtime.options.threads,
        n_batch=512,
        n_ubatch=n_ubatch,
        trace=True,
    )
    return split_sequences(result)


@pytest.mark.parametrize("model", ["llama_moe", "deepseek4"])
def test_one_selection_per_moe_layer_per_token_in_range(request: pytest.FixtureRequest, model: str) -> None:
    runtime: ModelRuntime = request.getfixturevalue(model)
    run = traced(runtime, [ROUTING_PROMPTS[0]])[0]
    n_layer = runtime.loaded()["n_layer"]
    assert sorted(run.topk) == list(range(n_layer))
    used = 2 if model == "llama_moe" else N_EXPERT_USED
    for rows in run.topk.values():
        assert len(rows) == len(run.inputs)  # one row per token fed: the prompt and all but the last generated token
        assert all(len(set(row)) == len(row) == used for row in rows)
        assert all(0 <= expert < TINY_EXPERTS for row in rows for expert in row)
    for rows in run.scores.values():
        assert len(rows) == len(run.inputs) and all(len(row) == TINY_EXPERTS for row in rows)


def test_learned_routing_picks_the_top_scored_experts(llama_moe: ModelRuntime) -> None:
    run = traced(llama_moe, [ROUTING_PROMPTS[1]])[0]
    for layer, rows in run.topk.items():
        for position, row in enumerate(rows):
            scores = np.array(run.scores[layer][position])
            assert set(row) == set(np.argsort(-scores)[: len(row)].tolist())


def test_hash_routed_layer_follows_the_token_table(deepseek4: ModelRuntime) -> None:
    table = build_tensors(hash_layer_count=1)["blk.0.ffn_gate_tid2eid.weight"]
    run = traced(deepseek4, [ROUTING_PROMPTS[2]])[0]
    assert [sorted(row) for row in run.topk[0]] == [sorted(table[token].tolist()) for token in run.inputs]
    assert N_EXPERT == TINY_EXPERTS


@pytest.mark.parametrize("model", ["llama_moe", "deepseek4"])
def test_routing_is_deterministic_under_standard_loads(request: pytest.FixtureRequest, model: str) -> None:
    runtime: ModelRuntime = request.getfixturevalue(model)
    loads = standard_loads(2)
    reference, comparison, per_load = run_loads(runtime, loads)
    finding = _decide(reference, comparison, per_load, loads, TINY_EXPERTS)
    assert finding.status == Status.MET, finding.summary
    assert set(per_load) == {load.name for load in loads} and per_load["repeat"] == 0
    assert all(d.tolerated for d in comparison.divergences)
    if model == "llama_moe":  # this graph is bitwise stable: no tie is even needed
        assert not comparison.divergences
        assert comparison.agreement() == {str(layer): 1.0 for layer in reference[0].topk}


def test_batched_sequences_are_split_back_correctly(llama_moe: ModelRuntime) -> None:
    alone = [traced(llama_moe, [prompt])[0] for prompt in ROUTING_PROMPTS]
    together = traced(llama_moe, list(ROUTING_PROMPTS))
    for expected, observed in zip(alone, together):
        assert observed.inputs == expected.inputs
        for layer, rows in observed.topk.items():
            attributed = [position for position, row in enumerate(rows) if row is not None]
            assert len(attributed) > 0.7 * len(rows)  # only rows whose (token, position) two prompts share are not
            assert [rows[p] for p in attributed] == [expected.topk[layer][p] for p in attributed]


def test_two_different_prompts_are_not_met(llama_moe: ModelRuntime) -> None:
    first, second = traced(llama_moe, [ROUTING_PROMPTS[0]])[0], traced(llama_moe, [ROUTING_PROMPTS[1]])[0]
    # the same token sequence claimed for both, so that every position is compared
    second = SequenceRun(first.inputs, first.generated, first.gaps, second.topk, second.scores)
    comparison = compare_runs(first, second, Load("repeat"), 0)
    assert comparison.divergences and all(not d.tolerated for d in comparison.divergences)
    assert all(d.margin is not None and d.margin >= 0 for d in comparison.divergences)
    finding = _decide([first], comparison, {"repeat": len(comparison.divergences)}, (Load("repeat"),), TINY_EXPERTS)
    assert finding.status == Status.NOT_MET
    assert finding.summary.startswith("routing diverges under repeat: prompt 0, layer ")
    assert "router margin" in finding.summary
    assert min(finding.evidence["agreement_per_layer"].values()) < 1.0


def test_near_ties_are_tolerated_only_where_kernels_may_change() -> None:
    tie = SequenceRun([1, 2], [2], [0.5], {0: [[0, 1], [0, 1]]}, {0: [[0.5, 0.40005, 0.4, 0.0], [0.5, 0.4, 0.1, 0.0]]})
    clear = SequenceRun([1, 2], [2], [0.5], {0: [[0, 1], [0, 1]]}, {0: [[0.5, 0.4, 0.1, 0.0], [0.5, 0.4, 0.1, 0.0]]})
    other = SequenceRun([1, 2], [2], [0.5], {0: [[0, 2], [0, 2]]}, {0: [[0.5, 0.4, 0.40005, 0.0], [0.5, 0.1, 0.4, 0.0]]})
    batch = Load("n_ubatch 7", n_ubatch=7, tolerates_ties=True)
    assert [d.tolerated for d in compare_runs(tie, other, batch, 0).divergences] == [True]  # margin 5e-5
    assert [d.tolerated for d in compare_runs(clear, other, batch, 0).divergences] == [False]  # margin 0.3
    assert [d.tolerated for d in compare_runs(tie, other, Load("repeat"), 0).divergences] == [False]


def test_what_follows_a_divergence_is_not_judged() -> None:
    """A tie flipped at layer 0 changes layer 1's input: its different choice is downstream, not a second failure."""
    reference = SequenceRun(
        [1, 2],
        [2],
        [0.5],
        {0: [[0, 1], [0, 1]], 1: [[2, 3], [2, 3]]},
        {0: [[0.5, 0.40005, 0.4, 0.0], [0.5, 0.4, 0.1, 0.0]], 1: [[0.0, 0.1, 0.5, 0.4]] * 2},
    )
    other = SequenceRun([1, 2], [2], [0.5], {0: [[0, 2], [0, 1]], 1: [[0, 1], [0, 1]]}, {})
    comparison = compare_runs(reference, other, Load("n_ubatch 7", n_ubatch=7, tolerates_ties=True), 0)
    assert [(d.layer, d.position, d.tolerated) for d in comparison.divergences] == [(0, 0, True)]
    assert comparison.downstream == 3  # layer 1 at token 0, both layers at token 1


def test_a_negative_margin_is_never_a_tie() -> None:
    reference = SequenceRun([1], [1], [0.5], {0: [[0, 1]]}, {0: [[0.1, 0.2, 0.3, 0.0]]})  # chose 0, 1 over a better 2
    other = SequenceRun([1], [1], [0.5], {0: [[0, 2]]}, {})
    divergence = compare_runs(reference, other, Load("n_ubatch 7", n_ubatch=7, tolerates_ties=True), 0).divergences[0]
    assert divergence.margin < 0 and not divergence.tolerated


def test_dead_experts_are_a_warning() -> None:
    run = SequenceRun([1, 2, 3], [3], [1.0], {0: [[0, 1], [0, 1], [1, 0]]}, {0: []})
    finding = _decide([run], Comparison(), {}, (), TINY_EXPERTS)
    assert finding.status == Status.MET
    assert finding.evidence["dead_experts"] == {"0": [2, 3]}
    assert "warning: experts never chosen in 1 layer(s)" in finding.summary
