"""The prompt cache (--dfqs-prefix-reuse) against recomputing every prompt, in one session.

- prompt tokens llama.cpp computes per few-shot reasoning item at the quick budget (40 items), with the cache against
  without: at most a quarter (the exemplars, 88% of a prompt, are computed once per kind);
- the reasoning step's wall time, both ways, and where the replies part (item, gap), on SmolLM2 and Gemma 3.

The eval tier end to end with and without it: benchmarks/test_eval_scale_speed.py.

Run with: pytest benchmarks/test_prefix_reuse_speed.py -m benchmark -s
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

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
