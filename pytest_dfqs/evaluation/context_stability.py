"""context_stability_curve, failure_boundary_tokens, and DFQS-3.5 long-context degradation.

At each tested context length (powers of two from 512 up to the model's
declared context or the budget's limit) a secret code is planted at several
depths of a deterministic filler text; after the filler the model is asked for
the code. Quality at a length is the mean, over depths, of the geometric-mean
probability the model gives the code's tokens (teacher forced): it measures
retrieval of a planted fact and the likelihood of a known continuation at
once, and it is never zero, so the curve can be normalized to the shortest
length.

failure_boundary_tokens is the smallest tested length whose normalized quality
falls below FAILURE_RATIO, or at which the runtime fails; when nothing fails,
the largest tested length, marked as a lower bound. Lengths the memory
preflight rules out are not tested (and recorded as such), never attempted.

Whether the curve declines gradually (DFQS-3.5) is decided in
`pytest_dfqs.clauses.long_context`.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from pytest_dfqs.runtime.client import ModelRuntime, RuntimeNotEvaluated, RuntimeUnavailable

from .journal import NO_JOURNAL, Journal

CONTEXT_SET_ID = "dfqs-context-v1"
SHORTEST = 512
FAILURE_RATIO = 0.5
FILLER = (
    "The river bends past the old mill, where the miller keeps his ledgers in a wooden chest. "
    "Every spring the water rises and the wheel turns faster, and the village counts its sacks of grain. "
)
CODES = ("4817", "9023", "3356", "7741")
QUESTION = " Question: what is the secret code of the vault? Answer: the secret code is"
PROBE_MARGIN = 64  # context beyond the tested length, for the scored answer


@dataclass
class StabilityResult:
    lengths: list[int] = field(default_factory=list)
    quality: list[float] = field(default_factory=list)
    retrieved: list[float] = field(default_factory=list)
    failure: dict[str, Any] | None = None
    memory_limit: dict[str, Any] | None = None  # the first length the memory preflight ruled out

    @property
    def curve(self) -> list[float]:
        base = self.quality[0] if self.quality else 0.0
        return [q / base for q in self.quality] if base > 0 else []

    def boundary(self) -> tuple[int, bool]:
        """(failure_boundary_tokens, is a lower bound)."""
        for length, ratio in zip(self.lengths, self.curve):
            if ratio < FAILURE_RATIO:
                return length, False
        if self.failure is not None:
            return self.failure["length"], False
        return (self.lengths[-1] if self.lengths else 0), True


def context_lengths(declared: int | None, limit: int) -> list[int]:
    top = min(declared or SHORTEST, limit)
    lengths, length = [], SHORTEST
    while length <= top:
        lengths.append(length)
        length *= 2
    return lengths or [SHORTEST]


def context_set_digest() -> str:
    """The context prompt set's identity in the conditions: filler, question and codes."""
    return hashlib.sha256(json.dumps([FILLER, QUESTION, list(CODES)]).encode()).hexdigest()


def measure(runtime: ModelRuntime, lengths: list[int], depths: tuple[float, ...], journal: Journal = NO_JOURNAL) -> StabilityResult:
    """Quality and retrieval at each length (each probe kept in the journal), up to what memory and the model allow."""
    result = StabilityResult()
    filler = runtime.request("tokenize", text=FILLER * 4, add_special=False)
    bos = runtime.request("tokenize", text="", add_special=True)
    question = runtime.request("tokenize", text=QUESTION, add_special=False)
    for length in lengths:
        try:
            runtime.preflight(length + PROBE_MARGIN)
        except RuntimeNotEvaluated as skipped:
            result.memory_limit = {"length": length, **skipped.evidence["memory_preflight"]}
            break
        try:
            scores = [
                journal.item(
                    "context",
                    f"{length}@{depth}",
                    partial(_probe, runtime, length, depth, code, filler, bos, question),
                )
                for depth, code in zip(depths, CODES)
            ]
        except RuntimeUnavailable as failure:
            result.failure = {"length": length, "error": str(failure).splitlines()[0]}
            break
        result.lengths.append(length)
        result.quality.append(sum(s["quality"] for s in scores) / len(scores))
        result.retrieved.append(sum(s["retrieved"] for s in scores) / len(scores))
    return result


def _probe(
    runtime: ModelRuntime, length: int, depth: float, code: str, filler: list[int], bos: list[int], question: list[int]
) -> dict[str, Any]:
    """The code planted at `depth` of a `length`-token context: its mean token probability, and whether greedy finds it."""
    fact = runtime.request("tokenize", text=f" The secret code of the vault is {code}.", add_special=False)
    answer = runtime.request("tokenize", text=f" {code}", add_special=False)
    room = max(length - len(bos) - len(fact) - len(question) - len(answer), 1)
    text = (filler * (room // len(filler) + 1))[:room]
    cut = int(room * depth)
    context = bos + text[:cut] + fact + text[cut:] + question
    scored = runtime.request(
        "continuation_logprobs", context_tokens=context, continuation=answer, n_ctx=length + PROBE_MARGIN, n_threads=runtime.options.threads
    )
    mean = sum(scored["logprobs"]) / len(scored["logprobs"])
    return {"quality": math.exp(mean), "retrieved": all(scored["greedy_matches"])}


def plot_stability(record: dict[str, Any], path: Path) -> Path | None:
    """The stability curve as a PNG beside the metrics record; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        return None
    details = record["details"]["context_stability"]
    figure, axes = pyplot.subplots(figsize=(7, 4), dpi=120)
    axes.plot(details["lengths"], record["context_stability_curve"], marker="o", label="quality / quality at 512")
    axes.axhline(FAILURE_RATIO, color="tab:red", linestyle="--", label=f"failure threshold {FAILURE_RATIO}")
    lower = " (lower bound)" if details["failure_boundary_is_lower_bound"] else ""
    axes.axvline(record["failure_boundary_tokens"], color="tab:gray", linestyle=":", label=f"failure boundary{lower}")
    axes.set_xscale("log", base=2)
    axes.set_xticks(details["lengths"], [f"{length:,}" for length in details["lengths"]])
    axes.set_ylim(bottom=0)
    axes.set_xlabel("context length (tokens)")
    axes.set_ylabel("normalized quality")
    axes.set_title(f"DFQS context stability: {record['model']['file_name']}")
    axes.legend(loc="lower left")
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
    return path
