"""cpu_tokens_per_sec: decode throughput on the CPU over warmed-up rounds.

Each round greedily generates the budget's tokens from the standard
generation prompt; the metric is the median decode rate. pytest-benchmark
drives the rounds when it is active, so its statistics land in its own report.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from pytest_dfqs.runtime.client import GENERATION_PROMPT, ModelRuntime, throughput

from .budget import Budget
from .journal import NO_JOURNAL, Journal

WARM_UP_TOKENS = 8


def measure_throughput(runtime: ModelRuntime, budget: Budget, benchmark: Any, journal: Journal = NO_JOURNAL) -> dict[str, Any]:
    """Decode throughput over warmed-up rounds (one journal item); pytest-benchmark drives the rounds when it is active."""
    return dict(journal.item("throughput", "rounds", lambda: _measured(runtime, budget, benchmark)))


def _measured(runtime: ModelRuntime, budget: Budget, benchmark: Any) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []

    def one_round() -> None:
        runs.append(runtime.generate(GENERATION_PROMPT, budget.throughput_tokens))

    runtime.generate(GENERATION_PROMPT, WARM_UP_TOKENS)  # warm-up: caches, page faults, thread pools
    _rounds(one_round, budget.throughput_rounds, benchmark)
    rates = [throughput(run) for run in runs]
    return {
        "decode_tokens_per_sec": statistics.median(r["decode_tokens_per_sec"] for r in rates),
        "prompt_tokens_per_sec": statistics.median(r["prompt_tokens_per_sec"] for r in rates),
        "rounds": len(runs),
        "tokens_per_round": budget.throughput_tokens,
        "per_round_decode_tokens_per_sec": [r["decode_tokens_per_sec"] for r in rates],
        "measured_with": "pytest-benchmark" if benchmark is not None and not benchmark.disabled else "pytest-dfqs rounds",
    }


def _rounds(action: Callable[[], None], rounds: int, benchmark: Any) -> None:
    """pytest-benchmark drives the rounds when it measures; disabled (xdist, --benchmark-disable) it would run one."""
    if benchmark is not None and not benchmark.disabled:
        benchmark.pedantic(action, rounds=rounds, iterations=1, warmup_rounds=0)
    else:
        for _ in range(rounds):
            action()
