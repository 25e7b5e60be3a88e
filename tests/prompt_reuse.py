"""The eval tier's few-shot reasoning prompts asked with and without the worker's prompt cache, and where the two
runs' greedy replies part: the item, both outputs, and the top-2 logit gap of the run without the cache there.

llama.cpp's CPU kernels round differently for other batch shapes: the same prompt fed as one batch or as two (the
shared exemplars, then the rest) gives logits up to 0.43 apart on SmolLM2 (measured), so a greedy choice whose top-2
gap is below about twice that can flip. A parting at a larger gap would be a fault of the cache, not rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pytest_dfqs.evaluation.budget import FEW_SHOT
from pytest_dfqs.evaluation.reasoning import Item, ask, load_set, question
from pytest_dfqs.runtime.client import Completion, ModelRuntime, RuntimeOptions
from tests.machine_speed import llama_threads

ROUNDING_GAP = 1.0  # a parting below this top-2 gap is rounding (twice the 0.43 measured between batch shapes, rounded up)


@dataclass(frozen=True)
class Parting:
    item: str
    step: int
    gap: float
    without: str
    with_cache: str


_ASKED: dict[tuple[Path, bool, int, int], list[Completion]] = {}  # replies asked one at a time, by model and settings


def replies(path: Path, reuse: bool, items: int, ctx: int = 4096, sequences: int = 1) -> list[Completion]:
    """Greedy few-shot replies to the prompt set's first `items` items, as the eval tier asks them: one at a time, or
    all asked at once, `sequences` of them extended together.

    Replies asked one at a time are asked once per session: the first `items` of a longer run are the same replies
    (greedy, in the same order from a fresh worker: each depends on its prompt only, as test_prompt_cache shows)."""
    key = (path, reuse, ctx, llama_threads())
    if sequences == 1 and len(_ASKED.get(key, [])) >= items:
        return _ASKED[key][:items]
    prompts = load_set()
    runtime = ModelRuntime(path, RuntimeOptions(threads=key[3], ctx=ctx, prefix_reuse=reuse, sequences=sequences))
    asked = prompts.items[:items]
    try:
        if sequences > 1:
            return runtime.complete_many([question(runtime, prompts, item, FEW_SHOT) for item in asked])
        _ASKED[key] = [ask(runtime, prompts, item, FEW_SHOT) for item in asked]
        return _ASKED[key]
    finally:
        runtime.close()


def partings(items: list[Item], without: list[Completion], with_cache: list[Completion]) -> list[Parting]:
    """Where each pair of replies parts (none where they agree)."""
    found = []
    for item, a, b in zip(items, without, with_cache):
        if a.ids == b.ids:
            continue
        step = next((i for i, (x, y) in enumerate(zip(a.ids, b.ids)) if x != y), min(len(a.ids), len(b.ids)))
        found.append(Parting(item.id, step, a.gaps[step], a.text, b.text))
    return found
