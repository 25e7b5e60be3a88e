"""Independent replies extended together (--dfqs-eval-sequences): the same replies as one at a time, or the items
where they part, each at a near tie (llama.cpp rounds other batch shapes differently), on SmolLM2 and Gemma 3; each
reply keeps its own budget and stop rules; a prompt's kept prefix is computed once per kind; long prompts wait for
room in the cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_dfqs.evaluation.code import MAX_TOKENS, STOP, load_problems
from pytest_dfqs.evaluation.reasoning import MAX_TOKENS as REASONING_TOKENS
from pytest_dfqs.evaluation.reasoning import load_set
from pytest_dfqs.runtime.client import Ask, ModelRuntime, RuntimeOptions
from tests.machine_speed import llama_threads
from tests.prompt_reuse import ROUNDING_GAP, partings, replies

ITEMS = 40  # the quick budget's reasoning items
pytestmark = pytest.mark.timeout(900)  # 7-35 s each quiet; beside one busy loop [smollm2] took 583 s, once over 960 s


@pytest.mark.parametrize("fixture", ["smollm2", "gemma3"])
def test_four_sequences_reply_as_one_at_a_time_but_for_near_ties(fixture: str, request: pytest.FixtureRequest) -> None:
    path: Path = request.getfixturevalue(fixture)
    alone, together = replies(path, True, ITEMS), replies(path, True, ITEMS, sequences=4)
    items = load_set().items[:ITEMS]
    parted = partings(items, alone, together)
    print(f"\n{path.name}: {len(parted)} of {ITEMS} replies part (item, token, top-2 gap, one at a time / four together):")
    for parting in parted:
        print(f"  {parting.item} at {parting.step} (gap {parting.gap:.3f}): {parting.without!r} / {parting.with_cache!r}")
    assert all(parting.gap < ROUNDING_GAP for parting in parted)
    assert len(parted) < ITEMS // 2
    for item, reply in zip(items, together):
        assert reply.tokens <= REASONING_TOKENS[item.kind] and "\nQuestion:" not in reply.text and "\n\n" not in reply.text
    kinds_seen: set[str] = set()
    for item, one, batched in zip(items, alone, together):  # the exemplars computed once per kind either way
        assert batched.prompt_tokens == one.prompt_tokens
        assert (batched.reused_tokens > 0) == (item.kind in kinds_seen) == (one.reused_tokens > 0)
        kinds_seen.add(item.kind)


def test_long_prompts_wait_for_room_and_each_keeps_its_budget(smollm2: Path) -> None:
    """Ten HumanEval prompts of up to 600 tokens with 256-token budgets, eight sequences in a 2,048-token context: no
    more than fit are active at once; every reply is the one-at-a-time reply or parts from it at a near tie."""
    problems = load_problems()[0][:10]
    asks = [Ask(problem.prompt, MAX_TOKENS["few-shot"], STOP) for problem in problems]
    results = {}
    for sequences in (1, 8):
        runtime = ModelRuntime(smollm2, RuntimeOptions(threads=llama_threads(), ctx=2048, sequences=sequences))
        try:
            results[sequences] = runtime.complete_many(asks)
        finally:
            runtime.close()
    for problem, one, batched in zip(problems, results[1], results[8]):
        assert batched.tokens <= MAX_TOKENS["few-shot"] and not any(stop in batched.text for stop in STOP), problem.task_id
        if one.ids != batched.ids:
            step = next((i for i, (a, b) in enumerate(zip(one.ids, batched.ids)) if a != b), min(len(one.ids), len(batched.ids)))
            assert one.gaps[step] < ROUNDING_GAP, (problem.task_id, step, one.gaps[step])
