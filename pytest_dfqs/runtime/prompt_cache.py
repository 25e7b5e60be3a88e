"""Prompts that share a beginning share its KV cache: llama-server's prompt cache, in the worker (worker side).

One context holds SLOTS sequences; each slot keeps the prompt it last decoded (its tokens, their KV cells). A new
prompt goes to the slot whose tokens share its longest beginning (ties and no sharing: the slot used longest ago), the
slot's cells past that beginning are removed (`llama_memory_seq_rm`) and only the rest of the prompt is decoded. Few-
shot reasoning prompts of one kind share their exemplars (88% of their tokens), chat prompts their system turn.

The cache is only kept where llama.cpp can keep it: a sliding-window model has dropped the cells before its window, so
a slot whose oldest cell is past what the new prompt's first new token attends to is decoded anew (the rule
llama-server applies); a removal llama.cpp refuses clears the slot. Slots give way, oldest first, to a prompt and its
reply that would not fit in the context's cells otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .bindings import llama_cpp

SLOTS = 4  # one per reasoning kind; the context's n_seq_max
MIN_SHARED = 16  # a shared beginning shorter than this is not worth a slot's cache: the slot used longest ago is taken


@dataclass(frozen=True)
class SlotChoice:
    """Where a prompt goes: its slot (the sequence id) and how many of its tokens the slot already holds."""

    slot: int
    reused: int


class PromptSlots:
    """The slots of one context and the tokens each holds."""

    def __init__(self, context: Any, model: Any, n_ctx: int) -> None:
        self.context, self.n_ctx = context, n_ctx
        self.memory = llama_cpp.llama_get_memory(context)
        self.window = llama_cpp.llama_model_n_swa(model)  # 0: no sliding window
        self.held: list[list[int]] = [[] for _ in range(SLOTS)]
        self.last_used = [0] * SLOTS
        self.clock = 0
        llama_cpp.llama_memory_clear(self.memory, True)

    def place(self, tokens: list[int], room: int) -> SlotChoice:
        """The slot for `tokens` (needing `room` cells more for the reply), its cells past the shared beginning removed."""
        self.clock += 1
        shared = [min(len(os.path.commonprefix([held, tokens])), len(tokens) - 1) for held in self.held]  # one token decoded
        sharing = [slot for slot in range(SLOTS) if shared[slot] >= MIN_SHARED]
        if sharing:
            slot = max(sharing, key=lambda s: shared[s])
            reused = self._keep(slot, shared[slot])
        else:
            slot = min(range(SLOTS), key=lambda s: self.last_used[s])
            reused = self._keep(slot, 0)
        self.last_used[slot] = self.clock
        self._make_room(slot, len(tokens) - reused + room)
        return SlotChoice(slot, reused)

    def hold(self, slot: int, tokens: list[int]) -> None:
        """After the reply: the slot keeps the prompt's cells only (the reply's are removed)."""
        if not llama_cpp.llama_memory_seq_rm(self.memory, slot, len(tokens), -1):
            self._clear(slot)
            return
        self.held[slot] = list(tokens)

    def _keep(self, slot: int, count: int) -> int:
        """Keep the slot's first `count` cells, where llama.cpp can; how many it kept."""
        if count and self.window and llama_cpp.llama_memory_seq_pos_min(self.memory, slot) > max(0, count - self.window):
            count = 0  # the window's cells before the new tokens are gone
        if count == 0 or not llama_cpp.llama_memory_seq_rm(self.memory, slot, count, -1):
            self._clear(slot)
            return 0
        self.held[slot] = self.held[slot][:count]
        return count

    def _make_room(self, slot: int, cells: int) -> None:
        """Clear other slots, oldest first, until the context has `cells` free beside what is held."""
        others = sorted((s for s in range(SLOTS) if s != slot and self.held[s]), key=lambda s: self.last_used[s])
        while others and sum(len(held) for held in self.held) + cells > self.n_ctx:
            self._clear(others.pop(0))

    def _clear(self, slot: int) -> None:
        llama_cpp.llama_memory_seq_rm(self.memory, slot, -1, -1)
        self.held[slot] = []
