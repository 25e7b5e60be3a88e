"""context_stability_curve, failure_boundary_tokens, and DFQS-3.5 long-context degradation.

The tested lengths are powers of two from 512 up to the model's declared context or the budget's limit. One
deterministic text, the haystack, is grown once to the longest of them. Facts ("The secret code of the amber anchor
vault is 4817.") are planted in it at fixed positions: for each tested length, one at each of the budget's depths of
that length. When the haystack reaches a length, every fact planted so far is asked for, each in a copy of the
haystack that is dropped afterwards, so the text grows on as if it had never been asked. The prompt tokens computed
are the longest length plus a question per length and fact; a fresh context per probe (dfqs-context-v1, whose
records stay readable and are not comparable) computed every length once per depth.

Quality at a length is the mean, over the facts at its own depths, of the geometric-mean probability the model gives
the code's tokens (teacher forced): it measures retrieval of a planted fact and the likelihood of a known
continuation at once, and it is never zero, so the curve can be normalized to the shortest length. `retrieved` is
the share of those facts that greedy decoding finds; `recall` the share of every fact planted before the length.

failure_boundary_tokens is the smallest tested length whose normalized quality
falls below FAILURE_RATIO, or at which the runtime fails; when nothing fails,
the largest tested length, marked as a lower bound. Lengths the memory
preflight rules out are not tested (and recorded as such), never attempted: the
haystack's context holds the longest length that fits.

Whether the curve declines gradually (DFQS-3.5) is decided in
`pytest_dfqs.clauses.long_context`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from pytest_dfqs.runtime.client import ModelRuntime, RuntimeNotEvaluated, RuntimeUnavailable

from .journal import NO_JOURNAL, Journal

CONTEXT_SET_ID = "dfqs-context-v2"
SHORTEST = 512
FAILURE_RATIO = 0.5
FILLER = (
    "The river bends past the old mill, where the miller keeps his ledgers in a wooden chest. "
    "Every spring the water rises and the wheel turns faster, and the village counts its sacks of grain. "
)
COLOURS = ("amber", "azure", "coral", "crimson", "golden", "ivory", "jade", "olive", "scarlet", "silver", "teal", "violet")
THINGS = ("anchor", "bell", "bridge", "candle", "compass", "falcon", "harbor", "lantern", "meadow", "orchard", "tower", "willow")
FACT = " The secret code of the {vault} vault is {code}."
QUESTION = " Question: what is the secret code of the {vault} vault? Answer: the secret code of the {vault} vault is"
ANSWER = " {code}"
PROBE_MARGIN = 64  # context beyond the longest length
GROW_TOKENS = 8192  # the haystack goes to the worker at most this many tokens a request (each within the request timeout)


@dataclass
class StabilityResult:
    lengths: list[int] = field(default_factory=list)
    quality: list[float] = field(default_factory=list)
    retrieved: list[float] = field(default_factory=list)
    failure: dict[str, Any] | None = None
    memory_limit: dict[str, Any] | None = None  # the first length the memory preflight ruled out
    recall: list[float] = field(default_factory=list)  # every fact planted before the length, found by greedy decoding
    prompt_tokens_computed: int = 0

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


@dataclass(frozen=True)
class Fact:
    """A fact planted for one tested length at one of its depths: a vault, its code, where it should start."""

    index: int
    length: int
    depth: float

    @property
    def vault(self) -> str:
        return f"{COLOURS[self.index % len(COLOURS)]} {THINGS[self.index // len(COLOURS) % len(THINGS)]}"

    @property
    def code(self) -> str:
        return str(1000 + (3817 + 7919 * self.index) % 9000)


@dataclass(frozen=True)
class Planted:
    """A fact as the haystack holds it: its tokens' span, and the question and answer that ask for it."""

    fact: Fact
    start: int
    end: int
    question: list[int]
    answer: list[int]


@dataclass
class Haystack:
    """The text grown to the longest length that fits, the facts in it, and the room a question and its answer take."""

    tokens: list[int]
    planted: list[Planted]
    ask_room: int

    def point(self, length: int) -> int:
        """How far the haystack has grown when a length's questions are asked: each question and answer end within it."""
        return length - self.ask_room

    def before(self, length: int) -> list[Planted]:
        return [planted for planted in self.planted if planted.end <= self.point(length)]


def context_lengths(declared: int | None, limit: int) -> list[int]:
    top = min(declared or SHORTEST, limit)
    lengths, length = [], SHORTEST
    while length <= top:
        lengths.append(length)
        length *= 2
    return lengths or [SHORTEST]


def context_set_digest() -> str:
    """The context prompt set's identity in the conditions: the filler, the fact, the question and how vaults and codes
    are drawn."""
    return hashlib.sha256(json.dumps([FILLER, FACT, QUESTION, ANSWER, list(COLOURS), list(THINGS)]).encode()).hexdigest()


def facts(lengths: list[int], depths: tuple[float, ...]) -> list[Fact]:
    return [Fact(index, length, depth) for index, (length, depth) in enumerate(itertools.product(lengths, depths))]


def fact_texts(fact: Fact) -> tuple[str, str, str]:
    """The fact as planted, the question that asks for it, the answer scored."""
    return FACT.format(vault=fact.vault, code=fact.code), QUESTION.format(vault=fact.vault), ANSWER.format(code=fact.code)


def layout(planted: list[Fact], told: list[int], ask_room: int, start: int, top: int) -> list[tuple[int, int, int]]:
    """(fact, first, end) of each fact that starts before `top`, in text order, from position `start` on: at its depth
    of its length's room for filler (`told` tokens a fact), or right after the fact before it when they would overlap."""
    fact_room = max(told)
    spans, cursor = [], start
    for index in sorted(range(len(planted)), key=lambda index: _target(planted[index], ask_room, fact_room)):
        target = _target(planted[index], ask_room, fact_room)
        if target >= top:
            break
        first = max(target, cursor)
        cursor = first + told[index]
        spans.append((index, first, cursor))
    return spans


def _target(fact: Fact, ask_room: int, fact_room: int) -> int:
    """Where a fact should start: its depth of the room its length leaves for filler before the questions."""
    return int(fact.depth * (fact.length - ask_room - fact_room))


def planned_questions(
    lengths: list[int], depths: tuple[float, ...], told: list[int], asked: list[int], start: int
) -> tuple[int, list[tuple[int, int]]]:
    """What the pass computes (`told` and `asked`: each fact's tokens, and its question's with its answer's): the
    haystack's length at the longest length's asking point, and at each length a batch per question for every fact
    before it (where it begins, its tokens)."""
    ask_room = max(asked)
    spans = layout(facts(lengths, depths), told, ask_room, start, lengths[-1])
    return lengths[-1] - ask_room, [
        (length - ask_room, asked[index] - 1) for length in lengths for index, _, end in spans if end <= length - ask_room
    ]


def haystack(runtime: ModelRuntime, lengths: list[int], depths: tuple[float, ...], top: int) -> Haystack:
    """The haystack up to `top` tokens in the model's own tokens: the filler stream with the facts planted (`layout`)."""
    tokens = _tokens(runtime, "", add_special=True)
    filler = _tokens(runtime, FILLER * 4)
    planted = facts(lengths, depths)
    told, questions, answers = zip(*[[_tokens(runtime, text) for text in fact_texts(fact)] for fact in planted])
    ask_room = max(len(question) + len(answer) for question, answer in zip(questions, answers))
    stream = itertools.cycle(filler)
    found = []
    for index, first, end in layout(planted, [len(told_) for told_ in told], ask_room, len(tokens), top):
        tokens += itertools.islice(stream, first - len(tokens))
        tokens += told[index]
        found.append(Planted(planted[index], first, end, questions[index], answers[index]))
    tokens += itertools.islice(stream, max(top - len(tokens), 0))
    return Haystack(tokens[:top], [fact for fact in found if fact.end <= top], ask_room)


def _tokens(runtime: ModelRuntime, text: str, add_special: bool = False) -> list[int]:
    tokens: list[int] = runtime.request("tokenize", text=text, add_special=add_special)
    return tokens


def measure(runtime: ModelRuntime, lengths: list[int], depths: tuple[float, ...], journal: Journal = NO_JOURNAL) -> StabilityResult:
    """Quality, retrieval and recall at each length (each length's answers kept in the journal), up to what memory and
    the model allow."""
    result = StabilityResult()
    reachable = _within_memory(runtime, lengths, result)
    if not reachable:
        return result
    length = reachable[0]
    try:
        text = haystack(runtime, lengths, depths, reachable[-1])
        pending = [tested for tested in reachable if ("context", str(tested)) not in journal.entries]
        if pending:
            runtime.request("haystack_begin", n_ctx=reachable[-1] + PROBE_MARGIN, n_threads=runtime.options.threads)
        grown = 0
        for length in reachable:
            if pending and length <= pending[-1]:  # a resumed run grows the text only as far as it asks
                result.prompt_tokens_computed += max(text.point(length) - grown, 0)
                grown = _grow(runtime, text, grown, text.point(length))
            asked = journal.item("context", str(length), partial(_ask, runtime, text, length))
            if length in pending:
                result.prompt_tokens_computed += asked["computed"]
            if not _record(result, length, asked["facts"]):
                break
    except RuntimeUnavailable as failure:
        result.failure = {"length": length, "error": str(failure).splitlines()[0]}
    return result


def _within_memory(runtime: ModelRuntime, lengths: list[int], result: StabilityResult) -> list[int]:
    """The lengths whose context the memory preflight admits, up to the first it rules out (kept in the result)."""
    reachable = []
    for length in lengths:
        try:
            runtime.preflight(length + PROBE_MARGIN)
        except RuntimeNotEvaluated as skipped:
            result.memory_limit = {"length": length, **skipped.evidence["memory_preflight"]}
            break
        reachable.append(length)
    return reachable


def _grow(runtime: ModelRuntime, text: Haystack, grown: int, stop: int) -> int:
    """Grow the worker's haystack from `grown` tokens to `stop`, GROW_TOKENS a request; how far it has grown."""
    for begin in range(grown, stop, GROW_TOKENS):
        runtime.request("haystack_grow", tokens=text.tokens[begin : min(begin + GROW_TOKENS, stop)])
    return max(grown, stop)


def _ask(runtime: ModelRuntime, text: Haystack, length: int) -> dict[str, Any]:
    """Every fact planted before `length`'s asking point asked for: its code's mean token probability, whether greedy
    decoding finds it, its depth there and whether it is one of the length's own; the prompt tokens it took."""
    answers, computed = [], 0
    for planted in text.before(length):
        scored = runtime.request("haystack_ask", question=planted.question, answer=planted.answer)
        computed += len(planted.question) + len(planted.answer) - 1
        answers.append(
            {
                "vault": planted.fact.vault,
                "depth": round(planted.start / text.point(length), 4),
                "own": planted.fact.length == length,
                "quality": math.exp(sum(scored["logprobs"]) / len(scored["logprobs"])),
                "retrieved": all(scored["greedy_matches"]),
            }
        )
    return {"facts": answers, "computed": computed}


def _record(result: StabilityResult, length: int, answers: list[dict[str, Any]]) -> bool:
    """A length's point of the curve from its answers; False (the curve ends, with the reason) when none of its own
    facts fit before its questions (a tokenizer that makes them too long for the length)."""
    own = [answer for answer in answers if answer["own"]]
    if not own:
        result.failure = {"length": length, "error": f"none of the facts planted for {length:,} tokens fit before its questions"}
        return False
    result.lengths.append(length)
    result.quality.append(sum(answer["quality"] for answer in own) / len(own))
    result.retrieved.append(sum(answer["retrieved"] for answer in own) / len(own))
    result.recall.append(sum(answer["retrieved"] for answer in answers) / len(answers))
    return True


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
