"""Which beginning of a prompt is computed once and kept: the rule the worker's prompt cache and the work plan share.

Standard library only: the pytest process plans with it without importing llama.cpp.
"""

from __future__ import annotations

import os

SLOTS = 4  # one per reasoning kind: the context's n_seq_max
STREAM_CELLS = 1024  # the largest KV stream per slot: the runtime's context is divided among the slots up to this
MIN_SHARED = 16  # a shared beginning shorter than this is not worth a slot


def stream_cells(n_ctx: int) -> int:
    """Cells per slot: the runtime's context shared among the slots (no more memory than one context of n_ctx)."""
    return min(STREAM_CELLS, n_ctx // SLOTS)


def declared_prefix(tokens: list[int], prefix: list[int], max_tokens: int, n_ctx: int) -> int:
    """How many of the prompt's tokens the prefix's own tokens begin with too (a tokenizer may merge across the
    prefix's end: the last token can differ), when they are MIN_SHARED or more and the prompt and its reply fit a
    slot; else 0 (the prompt is computed whole)."""
    if len(tokens) + max_tokens > stream_cells(n_ctx):
        return 0
    shared = len(os.path.commonprefix([prefix, tokens[:-1]]))
    return shared if shared >= MIN_SHARED else 0
