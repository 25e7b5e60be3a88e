"""Greedy completions of independent prompts extended together: llama-server's continuous batching (worker side).

Up to `sequences` prompts are active at once, each in a sequence of its own in one unified KV cache; each step
decodes the next token of every active reply in one batch, and a finished reply frees its sequence for the next
prompt at once. With prefix reuse, a prompt's declared beginning is decoded once into a holder sequence (one per
prefix, SLOTS of them, the one used longest ago given up first) and copied into the prompt's sequence
(`llama_memory_seq_cp`: the cells are shared, not copied). Each reply keeps its own stop rules and budget
(`advance`, which `ModelWorker.complete` uses for its one reply too); the batch's shape differs from one prompt alone,
so llama.cpp's kernels may round a near-tied greedy choice the other way (the eval tier records `eval_sequences` in
its conditions).
"""

from __future__ import annotations

import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .bindings import imported_on_first_use, llama_cpp
from .shared_prefix import SLOTS, declared_prefix

if TYPE_CHECKING:
    import numpy as np
else:
    np = imported_on_first_use("numpy")

Items = list[tuple[int, int, int]]  # (sequence, position, token)


class Decoder(Protocol):
    """What the batch asks of the model worker (`ModelWorker`)."""

    vocab: Any

    def tokenize(self, text: str, add_special: bool = True) -> list[int]: ...

    def detokenize(self, tokens: list[int]) -> str: ...

    def _feed(self, context: Any, items: Items, n_batch: int, all_logits: bool) -> dict[int, Any]: ...

    def _decode(self, context: Any, items: Items, wants_logits: list[bool]) -> None: ...

    def _logits(self, context: Any, row: int) -> Any: ...


@dataclass
class Reply:
    """One prompt's reply in the making."""

    index: int
    tokens: list[int]
    max_tokens: int
    stop: list[str]
    end: re.Pattern[str] | None
    seq: int = -1
    reused: int = 0
    logits: Any = None
    produced: list[int] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)
    text: str = ""
    ended: str = "budget"
    started: float = field(default_factory=time.perf_counter)

    def last(self) -> tuple[int, int, int]:
        """The reply's last token as the next batch decodes it: (sequence, position, token)."""
        return self.seq, len(self.tokens) + len(self.produced) - 1, self.produced[-1]

    def result(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "ended": self.ended,
            "tokens": len(self.produced),
            "ids": self.produced,
            "prompt_tokens": len(self.tokens),
            "reused_tokens": self.reused,
            "gaps": self.gaps,
            "seconds": time.perf_counter() - self.started,
        }


def advance(reply: Reply, decoder: Decoder, cut: Any) -> bool:
    """The reply's next greedy token from its logits, with the top-2 logit gap of the choice; True when the reply is
    done: end of generation, a stop string or its end pattern (`cut`), or its budget."""
    if len(reply.produced) >= reply.max_tokens:
        return True
    token = int(np.argmax(reply.logits))
    runner_up, best = np.partition(reply.logits, -2)[-2:]
    reply.gaps.append(float(best - runner_up))
    if llama_cpp.llama_vocab_is_eog(decoder.vocab, token):
        reply.ended = "eog"
        return True
    reply.produced.append(token)
    reply.text, reply.ended = cut(decoder.detokenize(reply.produced), reply.stop, reply.end)
    return reply.ended != "budget" or len(reply.produced) == reply.max_tokens


class ContinuousBatch:
    """The sequences of one context: `sequences` for replies, SLOTS more holding prefixes."""

    def __init__(self, worker: Decoder, context: Any, n_ctx: int, n_batch: int, sequences: int, reuse: bool) -> None:
        self.worker, self.context, self.n_ctx, self.n_batch, self.reuse = worker, context, n_ctx, n_batch, reuse
        self.memory = llama_cpp.llama_get_memory(context)
        self.sequences = sequences
        self.free = list(range(sequences))
        self.holders: dict[tuple[int, ...], int] = {}  # prefix -> holder sequence, the one used longest ago first
        llama_cpp.llama_memory_clear(self.memory, True)

    def run(self, requests: list[dict[str, Any]], cut: Any) -> list[dict[str, Any]]:
        """Each request's reply (`prompt`, `max_tokens`, `stop`, `end`, `prefix`), in request order."""
        pending = deque(self._reply(index, request) for index, request in enumerate(requests))
        prefixes = {index: request.get("prefix") for index, request in enumerate(requests)}
        results: list[dict[str, Any]] = [{} for _ in requests]
        active: list[Reply] = []
        while pending or active:
            while pending and self.free and self._fits(pending[0], active):
                reply = pending.popleft()
                self._start(reply, prefixes[reply.index])
                active.append(reply)
            for reply in [reply for reply in active if advance(reply, self.worker, cut)]:
                results[reply.index] = reply.result()
                llama_cpp.llama_memory_seq_rm(self.memory, reply.seq, -1, -1)
                self.free.append(reply.seq)
                active.remove(reply)
            if active:
                self._step(active)
        return results

    def _reply(self, index: int, request: dict[str, Any]) -> Reply:
        max_tokens = int(request["max_tokens"])
        tokens = self.worker.tokenize(request["prompt"])[: self.n_ctx - max_tokens]
        end = re.compile(request["end"]) if request.get("end") else None
        return Reply(index, tokens, max_tokens, list(request["stop"]), end)

    def _fits(self, reply: Reply, active: list[Reply]) -> bool:
        """Whether the cells left hold the reply's prompt and budget (the holders' prefixes given up when nothing else
        is active and they are in the way)."""
        used = sum(len(prefix) for prefix in self.holders) + sum(len(other.tokens) + other.max_tokens for other in active)
        if used + len(reply.tokens) + reply.max_tokens <= self.n_ctx:
            return True
        if active:
            return False
        for seq in self.holders.values():
            llama_cpp.llama_memory_seq_rm(self.memory, seq, -1, -1)
        self.holders.clear()
        return True

    def _start(self, reply: Reply, prefix: str | None) -> None:
        """The reply's sequence, its prompt decoded there (after its prefix's cells, copied from their holder)."""
        reply.seq = self.free.pop(0)
        shared = declared_prefix(reply.tokens, self.worker.tokenize(prefix), reply.max_tokens, self.n_ctx) if self.reuse and prefix else 0
        if shared:
            holder, held = self._holder(reply.tokens[:shared])
            llama_cpp.llama_memory_seq_cp(self.memory, holder, reply.seq, -1, -1)
            reply.reused = shared if held else 0
        fed = [(reply.seq, position, reply.tokens[position]) for position in range(shared, len(reply.tokens))]
        reply.logits = self.worker._feed(self.context, fed, self.n_batch, all_logits=False)[reply.seq]

    def _holder(self, prefix: list[int]) -> tuple[int, bool]:
        """The sequence holding `prefix`, and whether it held it already; else one cleared for it and the prefix
        decoded there alone."""
        key = tuple(prefix)
        if key in self.holders and self._intact(self.holders[key], len(prefix)):
            self.holders[key] = self.holders.pop(key)  # used now: last to be given up
            return self.holders[key], True
        if key in self.holders:  # its cells are gone (another request cleared the context, a window dropped them)
            llama_cpp.llama_memory_seq_rm(self.memory, self.holders.pop(key), -1, -1)
        if len(self.holders) < SLOTS:  # reply sequences come first, holders after them
            seq = min(set(range(self.sequences, self.sequences + SLOTS)) - set(self.holders.values()))
        else:
            seq = self.holders.pop(next(iter(self.holders)))
            llama_cpp.llama_memory_seq_rm(self.memory, seq, -1, -1)
        self.worker._feed(self.context, [(seq, position, token) for position, token in enumerate(prefix)], self.n_batch, all_logits=False)
        self.holders[key] = seq
        return seq, False

    def _intact(self, seq: int, length: int) -> bool:
        """The holder still has every cell of its prefix, from the first to the last position."""
        first, last = llama_cpp.llama_memory_seq_pos_min(self.memory, seq), llama_cpp.llama_memory_seq_pos_max(self.memory, seq)
        return bool(first == 0 and last == length - 1)

    def _step(self, active: list[Reply]) -> None:
        """Every active reply's last token decoded in one batch; each reply's next logits."""
        self.worker._decode(self.context, [reply.last() for reply in active], [True] * len(active))
        for row, reply in enumerate(active):
            reply.logits = self.worker._logits(self.context, row).copy()
