"""Reading the worker's routing traces back: every row at its sequence and position, or left out when shared."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_dfqs.runtime.client import ModelRuntime, RuntimeOptions
from pytest_dfqs.runtime.traces import ROUTING_PROMPTS, TraceMismatch, decode_matrix, row_owners
from tests.machine_speed import llama_threads


def test_rows_two_sequences_share_are_left_out() -> None:
    sequences = [[1, 5, 6], [1, 5, 7], [1, 8]]
    trace = {"tokens": [1, 5, 6, 1, 5, 7, 1, 8], "positions": [0, 1, 2, 0, 1, 2, 0, 1]}
    owners = row_owners(trace, sequences)
    assert owners == [None, None, (0, 2), None, None, (1, 2), None, (2, 1)]
    with pytest.raises(TraceMismatch, match="token 9 at position 2, which no sequence fed"):
        row_owners({"tokens": [1, 5, 9], "positions": [0, 1, 2]}, [[1, 5, 6]])
    with pytest.raises(TraceMismatch, match="2 token rows recorded for 3 tokens fed"):
        row_owners({"tokens": [1, 5], "positions": [0, 1]}, [[1, 5, 6]])


def test_a_trace_kept_from_a_position_holds_the_rows_from_there_on() -> None:
    sequences = [[1, 5, 6, 7], [1, 5, 9]]
    trace = {"tokens": [6, 7, 9], "positions": [2, 3, 2]}
    assert row_owners(trace, sequences, start=2) == [(0, 2), (0, 3), (1, 2)]
    with pytest.raises(TraceMismatch, match="2 token rows recorded for 3 tokens fed"):
        row_owners({"tokens": [6, 7], "positions": [2, 3]}, sequences, start=2)


@pytest.mark.timeout(300)
def test_the_worker_keeps_routing_rows_from_trace_from_on(runtime_moe_model: Path) -> None:
    """Behind a fill, only the prompt's rows come back: the same rows a full trace holds for those positions."""
    runtime = ModelRuntime(runtime_moe_model, RuntimeOptions(threads=llama_threads(), ctx=1024))
    try:
        tokens = runtime.request("tokenize", text=ROUTING_PROMPTS[2] * 3)
        args = {"prompts": [], "token_prompts": [tokens], "n_predict": 1, "n_ctx": 1024, "n_batch": 64, "n_ubatch": 64}
        args["n_threads"] = llama_threads()
        full = runtime.request("evaluate", trace=True, **args)["trace"]
        kept = runtime.request("evaluate", trace=True, trace_from=100, **args)["trace"]
    finally:
        runtime.close()
    assert kept["positions"] == list(range(100, len(tokens))) and kept["tokens"] == tokens[100:]
    for layer, rows in full["topk"].items():
        assert kept["topk"][layer] == rows[100:]
    assert (decode_matrix(kept["scores"]["0"]) == decode_matrix(full["scores"]["0"])[100:]).all()
