"""Routing under pressure: how expert routing moves under token pressure (spec section 10).

Section 10 expects that "routing variance increases under extreme token
pressure". This measures it as two curves. The standard routing prompts (the
DFQS-3.3 set) are placed after a growing context fill (0, 512, 1024, ...
tokens of a deterministic text, up to what the runtime's context leaves room
for), and co-batched with a growing number of other sequences (windows of the
same text, every sequence in one 512-token batch). Each point is compared with
the prompts' short, single-sequence routing: each prompt alone, no fill (the
reference).

Agreement at a point is the fraction of (token, layer) rows, over the prompts'
own tokens, whose selected expert set equals the reference's; the mean Jaccard
overlap of the sets says how far the rest moved. Behind a fill the prompt's
tokens sit at other positions and attend to other tokens, so their routing
legitimately changes: this is a measurement, a curve, not a pass/fail. The
zero-fill and single-sequence points repeat the reference's computation, so a
deterministic build agrees fully there.

Rows that llama.cpp computed for the same token at the same position of two
co-batched sequences cannot be told apart in its graph: they are left out and
counted. Every run uses the runtime's own context size, so no point needs
more memory than the runtime tier already took.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, partial
from pathlib import Path
from typing import Any

from pytest_dfqs.modelfile.facts import ModelFacts
from pytest_dfqs.runtime.client import ModelRuntime, RuntimeUnavailable
from pytest_dfqs.runtime.host import threads_text
from pytest_dfqs.runtime.traces import ROUTING_PROMPTS, TraceMismatch, row_owners

from .budget import Budget
from .journal import NO_JOURNAL, Journal

ROUTING_SET_ID = "dfqs-routing-pressure-v1"
FILLER = (  # starts with no prompt's first word: the other sequences' first token never hides a prompt's
    "Along the northern coast, lighthouse keepers logged every passing ship by name, flag and cargo. "
    "Storms were noted in red ink and calm nights in blue, and the ledgers filled a shelf each decade. "
    "Visiting clerks copied the totals into the harbour almanac before the winter ferries stopped running. "
)
SHORTEST_FILL = 512
PROMPT_ROOM = 256  # context kept free behind the longest fill: a prompt and its predicted token
OTHER_TOKENS = 64  # the most tokens of each co-batched sequence; fewer when they would not share one batch
BATCH = 512  # n_batch = n_ubatch, as the routing determinism reference
PREDICTED = 1  # routing is read on the prompt's own tokens: one greedy token is all a run needs
KIND = "routing"  # the journal's kind of item: one item per point

Rows = dict[int, list[list[int] | None]]  # per MoE layer, per prompt token: the experts chosen (None: unattributed)


@dataclass(frozen=True)
class PressurePoints:
    """Where the two curves are measured: tokens of fill before the prompt, sequences sharing its batch."""

    fills: tuple[int, ...]
    sequences: tuple[int, ...]


def pressure_points(ctx: int, budget: Budget) -> PressurePoints:
    """0, then 512, 1024, ... tokens of fill while a prompt still fits the runtime's context and the budget's limit."""
    top = min(ctx - PROMPT_ROOM, budget.max_context)
    fills, fill = [0], SHORTEST_FILL
    while fill <= top:
        fills.append(fill)
        fill *= 2
    return PressurePoints(tuple(fills), budget.routing_sequences)


def routing_set_digest() -> str:
    """The routing pressure set's identity in the conditions: prompts, filler, and how sequences are cut from it."""
    return hashlib.sha256(json.dumps([list(ROUTING_PROMPTS), FILLER, OTHER_TOKENS, BATCH, PREDICTED]).encode()).hexdigest()


def not_moe(facts: ModelFacts) -> dict[str, Any]:
    """The details of a dense model: why there are no curves."""
    key = f"{facts.architecture}.expert_count"
    return {"reason": f"not a Mixture-of-Experts model ({key} is {facts.expert_count}): no expert routing to measure"}


def prompt_rows(runtime: ModelRuntime, sequences: list[list[int]], start: int, length: int) -> Rows:
    """The experts each MoE layer chose for `length` tokens of sequence 0 from `start`, in one traced run of `sequences`."""
    options = runtime.options
    result = runtime.request(
        "evaluate",
        prompts=[],
        token_prompts=sequences,
        n_predict=PREDICTED,
        n_ctx=options.ctx,
        n_threads=options.threads,
        n_batch=BATCH,
        n_ubatch=BATCH,
        trace=True,
        trace_from=start,
    )
    trace = result["trace"]
    owners = row_owners(trace, sequences, start)
    where = {owner: row for row, owner in enumerate(owners) if owner is not None}
    rows: Rows = {}
    for layer, selected in trace["topk"].items():
        if len(selected) != len(owners):
            raise TraceMismatch(f"layer {layer} recorded {len(selected)} rows for {len(owners)} tokens fed")
        rows[int(layer)] = [selected[where[(0, p)]] if (0, p) in where else None for p in range(start, start + length)]
    return rows


@dataclass
class Agreement:
    """Expert sets of a point's rows against the reference's, pooled over the prompts."""

    rows: int = 0
    agreed: int = 0
    overlap: float = 0.0  # the sum of the rows' Jaccard overlaps
    unattributed: int = 0
    layers: int = 0

    def compare(self, reference: Rows, observed: Rows) -> None:
        self.layers = max(self.layers, len(reference))
        for layer, expected in reference.items():
            for ours, theirs in zip(expected, observed.get(layer, [])):
                if ours is None or theirs is None:
                    self.unattributed += 1
                    continue
                a, b = set(ours), set(theirs)
                self.rows += 1
                self.agreed += a == b
                self.overlap += len(a & b) / len(a | b)

    def result(self) -> dict[str, Any]:
        """The point as the journal keeps it; a point with no comparable row is a mismatch, not a zero."""
        if not self.rows:
            raise TraceMismatch(f"none of the prompts' rows could be attributed ({self.unattributed} left out)")
        return {
            "agreement": self.agreed / self.rows,
            "jaccard": self.overlap / self.rows,
            "rows": self.rows,
            "unattributed": self.unattributed,
            "layers": self.layers,
        }


class PressureProbe:
    """One model's runs: its tokens of the texts and its reference routing, each asked of llama.cpp on first need.

    Lazy, so that a run resumed with every point in the journal asks llama.cpp nothing.
    """

    def __init__(self, runtime: ModelRuntime) -> None:
        self.runtime = runtime

    def _tokens(self, text: str, add_special: bool = False) -> list[int]:
        tokens: list[int] = self.runtime.request("tokenize", text=text, add_special=add_special)
        return tokens

    @cached_property
    def bos(self) -> list[int]:
        return self._tokens("", add_special=True)

    @cached_property
    def prompts(self) -> list[list[int]]:
        return [self._tokens(prompt) for prompt in ROUTING_PROMPTS]

    @cached_property
    def filler(self) -> list[int]:
        return self._tokens(FILLER * 4)

    @cached_property
    def reference(self) -> list[Rows]:
        """Each prompt alone, no fill, one sequence."""
        rows = [prompt_rows(self.runtime, [self.bos + prompt], len(self.bos), len(prompt)) for prompt in self.prompts]
        if not rows[0]:
            raise TraceMismatch("llama.cpp's graph has no ffn_moe_topk-<layer> nodes for this architecture: routing cannot be traced")
        return rows

    def text(self, start: int, count: int) -> list[int]:
        """`count` tokens of the filler, repeated as needed, from token `start`."""
        repeats = (start + count) // len(self.filler) + 1
        return (self.filler * repeats)[start : start + count]

    def fill_point(self, fill: int) -> dict[str, Any]:
        """Each prompt alone behind `fill` tokens of the filler."""
        offset = len(self.bos) + fill
        return self._point([([self.bos + self.text(0, fill) + prompt], offset) for prompt in self.prompts])

    def batch_point(self, sequences: int) -> dict[str, Any]:
        """Each prompt first of `sequences` sequences, the others windows of the filler, all in one batch."""
        runs = []
        for prompt in self.prompts:
            mine = self.bos + prompt
            width = max(min(OTHER_TOKENS, (BATCH - len(mine)) // max(sequences - 1, 1)), 1)
            others = [self.bos + self.text(index * width, width) for index in range(sequences - 1)]
            runs.append(([mine, *others], len(self.bos)))
        return self._point(runs)

    def _point(self, runs: list[tuple[list[list[int]], int]]) -> dict[str, Any]:
        agreement = Agreement()
        for reference, prompt, (sequences, start) in zip(self.reference, self.prompts, runs):
            agreement.compare(reference, prompt_rows(self.runtime, sequences, start, len(prompt)))
        return agreement.result()


def measure_pressure(runtime: ModelRuntime, points: PressurePoints, journal: Journal = NO_JOURNAL) -> dict[str, Any]:
    """Both curves, each point kept in the journal; a failure ends the curves where it happened and is recorded."""
    probe = PressureProbe(runtime)
    measured: dict[str, list[tuple[int, dict[str, Any]]]] = {"fill": [], "batch": []}
    plan: list[tuple[str, int, Callable[[int], dict[str, Any]]]] = [("fill", fill, probe.fill_point) for fill in points.fills]
    plan += [("batch", count, probe.batch_point) for count in points.sequences]
    failure = None
    for curve, point, measure in plan:
        try:
            measured[curve].append((point, journal.item(KIND, f"{curve}-{point}", partial(measure, point))))
        except (RuntimeUnavailable, TraceMismatch) as error:
            failure = {"point": f"{curve}-{point}", "error": str(error).splitlines()[0]}
            break
    results = [result for curve in measured.values() for _, result in curve]
    return {
        "fill": _curve(measured["fill"], "tokens"),
        "batch": _curve(measured["batch"], "sequences"),
        "layers": max((result["layers"] for result in results), default=0),
        "rows_compared": sum(result["rows"] for result in results),
        "rows_unattributed": sum(result["unattributed"] for result in results),
        "reference": f"each prompt alone, no fill, one sequence; n_batch = n_ubatch = {BATCH}, {threads_text(runtime.options.threads)}",
        "failure": failure,
    }


def _curve(points: list[tuple[int, dict[str, Any]]], axis: str) -> dict[str, list[Any]]:
    return {
        axis: [point for point, _ in points],
        "agreement": [result["agreement"] for _, result in points],
        "jaccard": [result["jaccard"] for _, result in points],
    }


def plot_pressure(record: dict[str, Any], path: Path) -> Path | None:
    """Both curves as a PNG beside the metrics record; None for a dense model or without matplotlib."""
    details = record["details"]["routing_pressure"]
    if "fill" not in details:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        return None
    figure, (fill, batch) = pyplot.subplots(1, 2, figsize=(10, 4), dpi=120, sharey=True)
    _draw(fill, details["fill"]["tokens"], details["fill"], "tokens of context fill before the prompt")
    _draw(batch, details["batch"]["sequences"], details["batch"], "sequences sharing the batch")
    fill.set_ylabel("agreement with each prompt alone, no fill")
    figure.suptitle(f"DFQS routing under pressure: {record['model']['file_name']} ({details['layers']} MoE layers)")
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
    return path


def _draw(axes: Any, points: list[int], curve: dict[str, list[float]], label: str) -> None:
    """One curve's agreement and Jaccard overlap, its points evenly spaced (0 has no place on a log axis)."""
    spots = list(range(len(points)))
    axes.plot(spots, curve["agreement"], marker="o", label="expert sets equal (share of rows)")
    axes.plot(spots, curve["jaccard"], marker="s", linestyle="--", label="mean Jaccard overlap")
    axes.set_xticks(spots, [f"{point:,}" for point in points])
    axes.set_ylim(0, 1.05)
    axes.set_xlabel(label)
    axes.legend(loc="lower left")
