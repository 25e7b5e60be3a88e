"""The eval tier's budgets: documented, fixed subsets of every prompt set.

A budget is part of the recorded conditions: two records made with different
budgets are not comparable (DFQS-11.2). Standard library only, so that the
option parser can name the budgets without loading the evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """How much of each prompt set, which context lengths and depths, how many throughput rounds, how many sequences share a batch."""

    name: str
    reasoning_items: int | None  # None: the whole set
    code_problems: int | None
    max_context: int
    depths: tuple[float, ...]
    throughput_rounds: int
    throughput_tokens: int
    routing_sequences: tuple[int, ...]  # the routing pressure curve's points: sequences sharing one batch


FEW_SHOT, CHAT = "few-shot", "chat"  # the prompt modes (prompt_mode.py): named here for the option parser
PROMPT_MODES = (FEW_SHOT, CHAT)

BUDGETS = {
    "quick": Budget("quick", 40, 10, 2048, (0.25, 0.75), 3, 32, (1, 2, 4)),
    "standard": Budget("standard", 160, 40, 16384, (0.1, 0.5, 0.9), 5, 64, (1, 2, 4, 8)),
    "full": Budget("full", None, None, 1 << 40, (0.1, 0.35, 0.65, 0.9), 10, 128, (1, 2, 4, 8, 16)),
}
