"""The eval tier at the reference model's scale, in one session on this machine.

- decode throughput of independent sequences extended together, at 1, 2, 4 and 8 sequences, on SmolLM2, Gemma 3
  and the tiny deepseek4: what batching the eval tier's items could gain on this CPU (the eval tier decodes one
  item at a time unless --dfqs-eval-sequences says otherwise);
- the context stability curve in one pass at the standard budget on SmolLM2: prompt tokens computed against a probe
  per length and depth (dfqs-context-v1), and its wall time;
- the quick eval tier end to end, neither prefix reuse nor batching, prefix reuse (the default), and reuse with 8
  sequences, on SmolLM2 and the tiny deepseek4;
- the quick budget's reasoning step one item at a time against 4 and 8 extended together (--dfqs-eval-sequences).

Run with: pytest benchmarks/test_eval_scale_speed.py -m benchmark -s
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from benchmarks.measure import run_measured
from pytest_dfqs.evaluation.budget import BUDGETS
from pytest_dfqs.evaluation.context_stability import context_lengths, measure
from pytest_dfqs.runtime.client import GENERATION_PROMPT, ModelRuntime, RuntimeOptions
from tests.prompt_reuse import replies

pytestmark = pytest.mark.benchmark
SEQUENCES = (1, 2, 4, 8)
ITEMS = 40  # the quick budget's reasoning items
DECODED = 32


def decode_rate(runtime: ModelRuntime, sequences: int) -> float:
    """Tokens per second, all sequences together, of `sequences` copies of the standard prompt extended together."""
    run = runtime.request(
        "evaluate",
        prompts=[GENERATION_PROMPT] * sequences,
        n_predict=DECODED + 1,
        n_ctx=2048,
        n_threads=2,
        n_batch=512,
        n_ubatch=512,
        trace=False,
    )
    return sequences * DECODED / run["decode_seconds"]


@pytest.mark.parametrize("fixture", ["smollm2", "gemma3", "deepseek4_model"])
def test_decode_throughput_by_sequences(benchmark, fixture: str, request: pytest.FixtureRequest) -> None:
    path: Path = request.getfixturevalue(fixture)
    runtime = ModelRuntime(path, RuntimeOptions(threads=2, ctx=2048))
    try:
        decode_rate(runtime, 1)  # warm-up: the first reply is slower
        rates = {count: max(decode_rate(runtime, count) for _ in range(2)) for count in SEQUENCES[:-1]}
        rates[SEQUENCES[-1]] = benchmark.pedantic(lambda: decode_rate(runtime, SEQUENCES[-1]), rounds=1, iterations=1)
    finally:
        runtime.close()
    gains = {count: rate / rates[1] for count, rate in rates.items()}
    benchmark.extra_info.update({f"x{count}": gain for count, gain in gains.items()})
    print(f"\n{path.name}: " + ", ".join(f"{count} seq {rates[count]:.0f} tok/s (x{gains[count]:.2f})" for count in SEQUENCES))
    assert all(rate > 0 for rate in rates.values())


def test_the_curve_in_one_pass_computes_a_fifth_of_the_probes(benchmark, smollm2: Path) -> None:
    budget = BUDGETS["standard"]
    lengths = context_lengths(8192, budget.max_context)
    runtime = ModelRuntime(smollm2, RuntimeOptions(threads=2, ctx=4096))
    try:
        runtime.loaded()
        started = time.perf_counter()
        result = benchmark.pedantic(lambda: measure(runtime, lengths, budget.depths), rounds=1, iterations=1)
        seconds = time.perf_counter() - started
    finally:
        runtime.close()
    probes = sum(lengths) * len(budget.depths)
    share = result.prompt_tokens_computed / probes
    benchmark.extra_info.update({"computed_share": share, "seconds": seconds})
    print(
        f"\nSmolLM2 standard curve ({len(lengths)} lengths, {len(budget.depths)} depths): {result.prompt_tokens_computed:,} prompt tokens"
        f" computed in {seconds:.1f} s, a probe per length and depth {probes:,} ({share:.0%}); quality {result.curve}"
    )
    assert share <= 0.25


def eval_tier(model: Path, folder: Path, *options: str) -> tuple[float, dict]:
    """Wall seconds and metrics record of one quick eval tier run with `options`."""
    record = folder / f"metrics{''.join(options)}.json"
    args = ["-m", "pytest", f"--dfqs-model={model}", "--dfqs-tier=eval", "--dfqs-eval-budget=quick", f"--dfqs-metrics={record}"]
    wall, _, _ = run_measured([sys.executable, *args, *options, "-p", "no:cacheprovider"], folder)
    return wall, json.loads(record.read_text())


@pytest.mark.parametrize("fixture", ["smollm2", "deepseek4_model"])
def test_the_quick_eval_tier_with_reuse_and_batching_against_neither(
    benchmark, fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    path: Path = request.getfixturevalue(fixture)
    runs = {"neither": eval_tier(path, tmp_path, "--dfqs-prefix-reuse=off"), "reuse": eval_tier(path, tmp_path, "--dfqs-prefix-reuse=on")}
    runs["reuse and 8 sequences"] = benchmark.pedantic(
        lambda: eval_tier(path, tmp_path, "--dfqs-prefix-reuse=on", "--dfqs-eval-sequences=8"), rounds=1, iterations=1
    )
    base = runs["neither"][0]
    benchmark.extra_info.update({name: base / wall for name, (wall, _) in runs.items()})
    print(
        f"\n{path.name} quick eval tier: "
        + "; ".join(
            f"{name} {wall:.0f} s (x{base / wall:.2f}, scores {rec['reasoning_score']:.3f}, {rec['code_score']:.3f})"
            for name, (wall, rec) in runs.items()
        )
    )
    assert (
        runs["reuse and 8 sequences"][1]["conditions"]["eval_sequences"] == 8 and runs["neither"][1]["conditions"]["prefix_reuse"] is False
    )


@pytest.mark.parametrize("fixture", ["smollm2", "gemma3"])
def test_the_reasoning_step_by_sequences(benchmark, fixture: str, request: pytest.FixtureRequest) -> None:
    """The quick budget's 40 reasoning items, prefix reuse on, one at a time against 4 and 8 extended together."""
    path: Path = request.getfixturevalue(fixture)
    seconds = {}
    for sequences in (1, 4, 8):
        started = time.perf_counter()
        if sequences == 8:
            benchmark.pedantic(lambda: replies(path, True, ITEMS, sequences=8), rounds=1, iterations=1)
        else:
            replies(path, True, ITEMS, sequences=sequences)
        seconds[sequences] = time.perf_counter() - started
    gains = {count: seconds[1] / value for count, value in seconds.items()}
    benchmark.extra_info.update({f"x{count}": gain for count, gain in gains.items()})
    print(f"\n{path.name} reasoning step: " + ", ".join(f"{count} seq {seconds[count]:.1f} s (x{gains[count]:.2f})" for count in seconds))
