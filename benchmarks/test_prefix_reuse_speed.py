"""The prompt cache (--dfqs-prefix-reuse) against recomputing every prompt, in one session.

- prompt tokens llama.cpp computes per few-shot reasoning item at the quick budget (40 items), with the cache against
  without: at most a quarter (the exemplars, 88% of a prompt, are computed once per kind);
- the reasoning step's wall time, both ways, and where the replies part (item, gap), on SmolLM2 and Gemma 3;
- the eval tier end to end on SmolLM2 at the quick budget, `--dfqs-prefix-reuse=on` against `off`.

Run with: pytest benchmarks/test_prefix_reuse_speed.py -m benchmark -s
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from benchmarks.measure import run_measured
from pytest_dfqs.evaluation.reasoning import extract_answer, load_set
from tests.prompt_reuse import ROUNDING_GAP, partings, replies

pytestmark = pytest.mark.benchmark
ITEMS = 40  # the quick budget's reasoning items


@pytest.mark.parametrize("fixture", ["smollm2", "gemma3"])
def test_reasoning_computes_at_most_a_quarter_of_its_prompt_tokens(benchmark, fixture: str, request: pytest.FixtureRequest) -> None:
    path: Path = request.getfixturevalue(fixture)
    started = time.perf_counter()
    fresh = replies(path, False, ITEMS)
    without_s = time.perf_counter() - started
    started = time.perf_counter()
    cached = benchmark.pedantic(lambda: replies(path, True, ITEMS), rounds=1, iterations=1)
    with_s = time.perf_counter() - started
    prompt = sum(reply.prompt_tokens for reply in cached)
    computed = prompt - sum(reply.reused_tokens for reply in cached)
    items = load_set().items[:ITEMS]
    parted = partings(items, fresh, cached)
    share, speedup = computed / prompt, without_s / with_s
    scores = [
        sum(extract_answer(item, reply.text)[0] == item.answer.lower() for item, reply in zip(items, run)) / ITEMS
        for run in (fresh, cached)
    ]
    benchmark.extra_info.update({"computed_share": share, "speedup": speedup, "parted": len(parted)})
    print(
        f"\n{path.name}: {prompt / ITEMS:.0f} prompt tokens per item, {computed / ITEMS:.0f} computed with the cache ({share:.0%});"
        f" reasoning {without_s:.1f} s without, {with_s:.1f} s with (x{speedup:.2f}); score {scores[0]:.3f} / {scores[1]:.3f};"
        f" {len(parted)} of {ITEMS} replies part:"
    )
    for parting in parted:
        print(f"  {parting.item} at token {parting.step}, top-2 gap {parting.gap:.3f}: {parting.without!r} / {parting.with_cache!r}")
    assert share <= 0.25
    assert all(parting.gap < ROUNDING_GAP for parting in parted)


def eval_tier(model: Path, folder: Path, reuse: str) -> tuple[float, dict]:
    record = folder / f"metrics-{reuse}.json"
    args = ["-m", "pytest", f"--dfqs-model={model}", "--dfqs-tier=eval", "--dfqs-eval-budget=quick", f"--dfqs-metrics={record}"]
    wall, _, _ = run_measured([sys.executable, *args, f"--dfqs-prefix-reuse={reuse}", "-p", "no:cacheprovider"], folder)
    return wall, json.loads(record.read_text())


def test_the_quick_eval_tier_with_the_cache_against_without(benchmark, smollm2: Path, tmp_path: Path) -> None:
    without, old = eval_tier(smollm2, tmp_path, "off")
    with_cache, new = benchmark.pedantic(lambda: eval_tier(smollm2, tmp_path, "on"), rounds=1, iterations=1)
    speedup = without / with_cache
    benchmark.extra_info.update({"without_s": without, "with_s": with_cache, "speedup": speedup})
    print(
        f"\nSmolLM2 quick eval tier: {without:.0f} s without the cache, {with_cache:.0f} s with (x{speedup:.2f});"
        f" reasoning_score {old['reasoning_score']:.3f} / {new['reasoning_score']:.3f},"
        f" code_score {old['code_score']:.3f} / {new['code_score']:.3f}"
    )
    assert new["conditions"]["prefix_reuse"] is True and old["conditions"]["prefix_reuse"] is False
    assert speedup > 1.0
