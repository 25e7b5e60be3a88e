"""The worker's prompt cache: a declared shared beginning (a reasoning kind's exemplars) computed once and kept.

On SmolLM2 and on Gemma 3 (a sliding-window model) with the eval tier's own few-shot reasoning prompts: each kind's
exemplars are reused while the kinds alternate; a reply depends on its prompt only (asked in another order, the same
tokens); where it differs from the reply to the whole prompt in one batch it parts at a near tie; a context too small
for the slots computes whole prompts, exactly as without the cache.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_dfqs.evaluation.budget import FEW_SHOT
from pytest_dfqs.evaluation.reasoning import ask, load_set
from pytest_dfqs.runtime.client import ModelRuntime, RuntimeOptions
from tests.machine_speed import llama_threads
from tests.prompt_reuse import ROUNDING_GAP, partings, replies

ITEMS = 12  # three of each kind, the kinds alternating as the prompt set orders them
pytestmark = pytest.mark.timeout(900)  # 13-20 s each quiet; beside one busy loop the small-context test took over 356 s


@pytest.mark.parametrize("fixture", ["smollm2", "gemma3"])
def test_each_kinds_exemplars_are_reused_and_replies_part_only_at_near_ties(fixture: str, request: pytest.FixtureRequest) -> None:
    path: Path = request.getfixturevalue(fixture)
    items = load_set().items[:ITEMS]
    fresh, reused = replies(path, False, ITEMS), replies(path, True, ITEMS)
    assert all(reply.reused_tokens == 0 for reply in fresh)
    kinds = [item.kind for item in items]
    for index, reply in enumerate(reused):
        assert reply.prompt_tokens == fresh[index].prompt_tokens
        if kinds.index(kinds[index]) == index:
            assert reply.reused_tokens == 0  # nothing of its kind was held yet
        else:  # the kind's exemplars came from its slot, though other kinds were asked in between
            assert reply.reused_tokens >= 0.6 * reply.prompt_tokens, (index, reply)
    parted = partings(items, fresh, reused)
    for parting in parted:
        print(f"{path.name}: {parting}")
    assert all(parting.gap < ROUNDING_GAP for parting in parted), parted
    assert len(parted) < ITEMS // 2


def test_a_reply_depends_on_its_prompt_only_not_on_what_was_asked_before(smollm2: Path) -> None:
    """The property a resumed evaluation needs: the items asked in reverse order give the same tokens."""
    prompts = load_set()
    items = prompts.items[:ITEMS]
    in_order = replies(smollm2, True, ITEMS)
    runtime = ModelRuntime(smollm2, RuntimeOptions(threads=llama_threads(), ctx=4096, prefix_reuse=True))
    try:
        backwards = [ask(runtime, prompts, item, FEW_SHOT) for item in reversed(items)][::-1]
    finally:
        runtime.close()
    assert [reply.ids for reply in backwards] == [reply.ids for reply in in_order]
    assert sum(reply.reused_tokens for reply in backwards) == sum(reply.reused_tokens for reply in in_order) > 0


def test_a_context_too_small_for_the_slots_computes_whole_prompts(smollm2: Path) -> None:
    """At 1,024 tokens a slot's stream has 256 cells, too few for a prompt and its reply: every prompt is computed
    whole, as without the cache, token for token."""
    fresh, reused = replies(smollm2, False, ITEMS, ctx=1024), replies(smollm2, True, ITEMS, ctx=1024)
    assert all(reply.reused_tokens == 0 for reply in reused)
    assert [reply.ids for reply in reused] == [reply.ids for reply in fresh]
