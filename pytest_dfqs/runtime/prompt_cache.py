"""A prompt's declared shared beginning computed once and kept: the few-shot exemplars of a kind (worker side).

A caller that knows which beginning its prompts share (the eval tier's exemplars of one reasoning kind: 88% of each
prompt) names it. One context holds SLOTS sequences, each in a KV stream of its own (`kv_unified` off: a sequence's
attention sees its own cells only, laid out the same whatever the other slots hold); a slot keeps one prefix. A prompt
whose prefix a slot holds continues it; otherwise the slot used longest ago is cleared and the prefix decoded there
alone first. Either way the prompt is computed the same way, the prefix as one batch and the rest after it, so a reply
depends on its prompt only, never on which prompts came before (a resumed evaluation equals an uninterrupted one). It
is not the same computation as one batch of the whole prompt: llama.cpp's CPU kernels round differently for other
batch shapes, which the conditions record (`prefix_reuse`).

A sliding-window model drops the cells before its window: a slot whose oldest cell is gone decodes its prefix anew.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .bindings import llama_cpp
from .shared_prefix import SLOTS


@dataclass(frozen=True)
class SlotChoice:
    """Where a prompt goes: its slot (the sequence id), and whether the slot held its prefix already."""

    slot: int
    held: bool


class PromptSlots:
    """The slots of one context and the prefix each holds."""

    def __init__(self, context: Any, model: Any) -> None:
        self.memory = llama_cpp.llama_get_memory(context)
        self.window = llama_cpp.llama_model_n_swa(model)  # 0: no sliding window
        self.held: list[list[int]] = [[] for _ in range(SLOTS)]
        self.last_used = [0] * SLOTS
        self.clock = 0
        llama_cpp.llama_memory_clear(self.memory, True)

    def place(self, prefix: list[int]) -> SlotChoice:
        """The slot holding `prefix`, or the slot used longest ago, cleared (the caller decodes the prefix there)."""
        self.clock += 1
        holding = [slot for slot in range(SLOTS) if self.held[slot] == prefix and self._intact(slot)]
        slot = holding[0] if holding else min(range(SLOTS), key=lambda s: self.last_used[s])
        self.last_used[slot] = self.clock
        if not holding:
            llama_cpp.llama_memory_seq_rm(self.memory, slot, -1, -1)
            self.held[slot] = []
        return SlotChoice(slot, bool(holding))

    def hold(self, slot: int, prefix: list[int]) -> None:
        """After the reply: the slot keeps the prefix's cells only; where llama.cpp cannot remove the rest, nothing."""
        if llama_cpp.llama_memory_seq_rm(self.memory, slot, len(prefix), -1):
            self.held[slot] = list(prefix)
        else:
            llama_cpp.llama_memory_seq_rm(self.memory, slot, -1, -1)
            self.held[slot] = []

    def _intact(self, slot: int) -> bool:
        """Every cell of the slot's prefix is still there (a sliding window may have dropped the first ones)."""
        return not self.window or llama_cpp.llama_memory_seq_pos_min(self.memory, slot) == 0
