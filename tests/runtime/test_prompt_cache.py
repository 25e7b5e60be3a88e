"""The worker's prompt cache: a completion continues the KV cache of an earlier prompt sharing its beginning.

On SmolLM2 and on Gemma 3 (a sliding-window model) with the eval tier's own few-shot reasoning prompts: the tokens
reused are each kind's exemplars, each kind keeps its slot while the kinds alternate, a context too small for every
slot gives way, and where a reply differs from the one computed from an empty cache it parts at a near tie.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_dfqs.evaluation.reasoning import load_set
from tests.prompt_reuse import ROUNDING_GAP, partings, replies

ITEMS = 12  # three of each kind, the kinds alternating as the prompt set orders them


@pytest.mark.parametrize("fixture", ["smollm2", "gemma3"])
def test_reused_exemplars_part_from_an_empty_cache_only_at_near_ties(fixture: str, request: pytest.FixtureRequest) -> None:
    path: Path = request.getfixturevalue(fixture)
    items = load_set().items[:ITEMS]
    fresh, reused = replies(path, False, ITEMS), replies(path, True, ITEMS)
    assert all(reply.reused_tokens == 0 for reply in fresh)
    first_of_kind = {[item.kind for item in items].index(kind) for kind in {item.kind for item in items}}
    for index, reply in enumerate(reused):
        assert reply.prompt_tokens == fresh[index].prompt_tokens
        if index in first_of_kind:
            assert reply.reused_tokens == 0  # nothing of its kind was cached yet
        else:  # the kind's exemplars came from its slot, though other kinds were asked in between
            assert reply.reused_tokens >= 0.6 * reply.prompt_tokens, (index, reply)
    parted = partings(items, fresh, reused)
    for parting in parted:
        print(f"{path.name}: {parting}")
    assert all(parting.gap < ROUNDING_GAP for parting in parted), parted
    assert len(parted) < ITEMS // 2


def test_a_context_too_small_for_every_slot_gives_way(smollm2: Path) -> None:
    """768 cells hold two of the kinds' prompts at most: older slots are cleared before a decode would find no room
    (llama_decode fails then), the replies those of an empty cache up to near ties."""
    items = load_set().items[:ITEMS]
    fresh, reused = replies(smollm2, False, ITEMS, ctx=768), replies(smollm2, True, ITEMS, ctx=768)
    assert [reply.prompt_tokens for reply in reused] == [reply.prompt_tokens for reply in fresh]
    assert all(parting.gap < ROUNDING_GAP for parting in partings(items, fresh, reused))
