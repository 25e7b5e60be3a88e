"""The worker's routing traces, read back, and the prompts every routing measurement shares.

The worker records, from llama.cpp's graph, one row per token of each ubatch
with the token id and position llama.cpp computed it with. `row_owners` puts
each row back at its (sequence, position); `decode_matrix` unpacks the router
scores. DFQS-3.3's determinism runs, the golden traces and fidelity (clauses)
and routing under pressure (evaluation) all read traces this way, on the same
standard routing prompts.
"""

from __future__ import annotations

import base64
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is imported where it is used: a header-only run never loads it (0.15 s of start-up)
    import numpy as np

ROUTING_PROMPTS = (
    "The quick brown fox jumps over the lazy dog while the experts of the model take turns.",
    "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
    "In 1969 the first humans walked on the Moon; 384,400 km away, and yet the signal took 1.3 s.",
)


class TraceMismatch(Exception):
    """The recorded rows cannot be matched to the tokens that were fed."""


def decode_matrix(entry: dict[str, Any]) -> np.ndarray:
    """A matrix as the worker and trace files send it: dtype, shape and its bytes in base64."""
    import numpy as np

    raw = base64.b64decode(entry["base64"])
    return np.frombuffer(raw, dtype=np.dtype(entry["dtype"])).reshape(entry["shape"])


def row_owners(trace: dict[str, Any], inputs: list[list[int]], start: int = 0) -> list[tuple[int, int] | None]:
    """(sequence, position) of every recorded row, from the token ids and positions llama.cpp computed with.

    llama.cpp may reorder a batch's tokens into ubatches, so rows are matched by
    (token, position), not by an assumed order. None where two sequences hold
    the same token at the same position: such a row cannot be attributed. A
    trace kept from position `start` on (the worker's `trace_from`) holds rows
    for the tokens from there only.
    """
    taken: set[tuple[int, int]] = set()
    owners: list[tuple[int, int] | None] = []
    shared = Counter((tokens[position], position) for tokens in inputs for position in range(len(tokens)))
    for token, position in zip(trace["tokens"], trace["positions"]):
        candidates = [
            seq
            for seq, tokens in enumerate(inputs)
            if start <= position < len(tokens) and tokens[position] == token and (seq, position) not in taken
        ]
        if not candidates:
            raise TraceMismatch(f"llama.cpp computed token {token} at position {position}, which no sequence fed")
        taken.add((candidates[0], position))
        owners.append((candidates[0], position) if shared[(token, position)] == 1 else None)
    fed = sum(max(len(tokens) - start, 0) for tokens in inputs)
    if len(owners) != fed or len(trace["positions"]) != len(trace["tokens"]):
        raise TraceMismatch(f"{len(owners)} token rows recorded for {fed} tokens fed")
    return owners
