"""DFQS-3.3: routing SHALL remain deterministic under standard inference loads.

The worker records, from llama.cpp's own compute graph, the experts every MoE
layer selects for every token (nodes `ffn_moe_topk-<layer>`) and the router
scores they were selected by. A fixed set of prompts is run once as the
reference (each prompt alone, all threads, n_batch = n_ubatch = 512) and again
under each standard inference load; selections are compared as sets, token by
token and layer by layer, over the tokens both runs fed, up to the first
divergence: what follows it computes on different inputs and is counted, not
judged. Greedy output tokens are compared too.

The decision rule:
- a repeat of the same run must agree exactly: nothing changed, so any
  difference is non-determinism;
- a different thread count, batching with other sequences and batch-size
  changes (n_batch / n_ubatch) make llama.cpp pick other CPU kernels and work
  splits (llama.cpp issues #3014, #4479 for batch size, #22956 for OpenMP
  threading), which round differently. A divergence there is tolerated, and
  reported with its margin, only when it is a numerical tie: the reference
  router score margin between the last chosen and the first rejected expert is
  at least 0 and below NEAR_TIE_MARGIN, or, for a greedy token, the reference top-2 logit gap
  is below GREEDY_TIE_GAP. Any other divergence is NOT MET.

With the layers on llama.cpp rpc-servers (--dfqs-rpc), the reference runs there, and one more load is the
placement itself: the same prompts on this machine's CPU alone, in a worker of its own (when the model fits here;
else only a golden trace recorded locally, DFQS-3.3's routing-trace, compares the placements). The servers compute
with their own thread counts, so this load tolerates ties as the thread-count load does.

Rows whose (token, position) occurs in more than one sequence of a batched run
cannot be told apart in llama.cpp's graph; they are left out of the
comparison and counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is imported where it is used: a header-only run never loads it (0.15 s of start-up)
    import numpy as np

from pytest_dfqs.model import ModelUnderTest
from pytest_dfqs.runtime.client import ModelRuntime, RuntimeUnavailable
from pytest_dfqs.runtime.rpc import Placement
from pytest_dfqs.runtime.traces import ROUTING_PROMPTS, TraceMismatch, decode_matrix, row_owners
from pytest_dfqs.verdict import Finding, Status

GENERATED = 16
REFERENCE_BATCH = 512
NEAR_TIE_MARGIN = 1e-4
GREEDY_TIE_GAP = 0.01
COMPACT_TOKENS = 16
LISTED = 10


@dataclass(frozen=True)
class Load:
    """A standard inference load: what changes against the reference run, and the rule that applies."""

    name: str
    threads: int | None = None
    n_batch: int = REFERENCE_BATCH
    n_ubatch: int = REFERENCE_BATCH
    together: bool = False
    tolerates_ties: bool = False
    elsewhere: bool = False  # run on this machine's CPU alone, against a reference on the rpc-servers


PLACEMENT_LOAD = Load("placed on this machine's CPU vs on the rpc-servers", tolerates_ties=True, elsewhere=True)


def standard_loads(threads: int, distributed: bool = False) -> tuple[Load, ...]:
    other_threads = 1 if threads > 1 else 2
    placement = (PLACEMENT_LOAD,) if distributed else ()
    return (
        Load("repeat"),
        Load(f"{other_threads} vs {threads} threads", threads=other_threads, tolerates_ties=True),
        Load("batched with other sequences", together=True, tolerates_ties=True),
        Load("n_batch 32 / n_ubatch 32", n_batch=32, n_ubatch=32, tolerates_ties=True),
        Load("n_ubatch 7", n_ubatch=7, tolerates_ties=True),
        Load("n_ubatch 1", n_ubatch=1, tolerates_ties=True),
    ) + placement


@dataclass(frozen=True)
class SequenceRun:
    """One prompt's run: the tokens fed, the greedy output, and the routing per layer per fed token."""

    inputs: list[int]
    generated: list[int]
    gaps: list[float]
    topk: dict[int, list[list[int]]]
    scores: dict[int, list[Any]]  # per layer, one float32 row per token fed (None where unattributed)
    margins: dict[int, list[float | None]] = field(default_factory=dict)  # per layer and token, when only margins were kept (a trace)


@dataclass(frozen=True)
class Divergence:
    load: str
    prompt: int
    layer: int | None  # None: the greedy output token diverged
    position: int
    reference: list[int]
    other: list[int]
    margin: float | None
    tolerated: bool

    def describe(self) -> str:
        where = f"layer {self.layer}" if self.layer is not None else "greedy output"
        margin = "n/a" if self.margin is None else f"{self.margin:.3g}"
        kind = "router margin" if self.layer is not None else "top-2 logit gap"
        return (
            f"{self.load}: prompt {self.prompt}, {where}, token position {self.position}:"
            f" {self.reference} vs {self.other} ({kind} {margin})"
        )


@dataclass
class Comparison:
    divergences: list[Divergence] = field(default_factory=list)
    compared: Counter = field(default_factory=Counter)  # layer -> token rows compared
    agreed: Counter = field(default_factory=Counter)  # layer -> token rows that agreed
    unattributed: int = 0  # rows of batched runs that no single sequence can claim
    downstream: int = 0  # rows after a divergence, computed on different inputs

    def add(self, other: Comparison) -> None:
        self.divergences += other.divergences
        self.compared.update(other.compared)
        self.agreed.update(other.agreed)
        self.unattributed += other.unattributed
        self.downstream += other.downstream

    def agreement(self) -> dict[str, float]:
        return {str(layer): self.agreed[layer] / count for layer, count in sorted(self.compared.items()) if count}


def split_sequences(result: dict[str, Any]) -> list[SequenceRun]:
    """One SequenceRun per prompt of a traced run, each row put back at its sequence and position."""
    prompts, generated, trace = result["prompt_tokens"], result["generated"], result["trace"]
    inputs = [prompt + output[:-1] for prompt, output in zip(prompts, generated)]
    owners = row_owners(trace, inputs)

    def per_sequence(rows: Sequence[Any] | np.ndarray) -> list[list[Any]]:
        if len(rows) != len(owners):
            raise TraceMismatch(f"a layer recorded {len(rows)} rows for {len(owners)} tokens fed")
        placed: list[list[Any]] = [[None] * len(tokens) for tokens in inputs]
        for owner, row in zip(owners, rows):
            if owner is not None:
                placed[owner[0]][owner[1]] = row
        return placed

    topk = {int(layer): per_sequence(rows) for layer, rows in trace["topk"].items()}
    scores = {int(layer): per_sequence(decode_matrix(entry)) for layer, entry in trace["scores"].items()}
    return [
        SequenceRun(
            inputs=inputs[seq],
            generated=generated[seq],
            gaps=result["top2_gaps"][seq],
            topk={layer: rows[seq] for layer, rows in topk.items()},
            scores={layer: rows[seq] for layer, rows in scores.items()},
        )
        for seq in range(len(inputs))
    ]


def router_margin(scores: Sequence[float] | np.ndarray, selected: list[int]) -> float | None:
    """Score of the last chosen expert minus that of the first rejected one."""
    rejected = [float(score) for expert, score in enumerate(scores) if expert not in selected]
    if not rejected or any(expert >= len(scores) for expert in selected):
        return None
    return min(float(scores[expert]) for expert in selected) - max(rejected)


def compare_runs(reference: SequenceRun, other: SequenceRun, load: Load, prompt: int) -> Comparison:
    """Expert selections as sets, token by token and layer by layer, up to the first divergence.

    Everything after the first divergence (later layers of that token, later
    tokens) computes on different inputs, so it is counted as downstream and
    not judged; a greedy-token divergence is judged only when routing agreed
    up to it.
    """
    comparison = Comparison()
    fed = common_prefix(reference.inputs, other.inputs)
    layers = sorted(reference.topk)
    for position in range(fed):
        for layer in layers:
            ours, theirs = _row(reference.topk[layer], position), _row(other.topk.get(layer, []), position)
            if ours is None or theirs is None:
                comparison.unattributed += 1
                continue
            comparison.compared[layer] += 1
            if set(ours) == set(theirs):
                comparison.agreed[layer] += 1
                continue
            comparison.divergences.append(_routing_divergence(reference, load, prompt, layer, position, ours, theirs))
            comparison.downstream = (fed - position) * len(layers) - layers.index(layer) - 1
            return comparison
    comparison.divergences += _greedy_divergence(reference, other, load, prompt)
    return comparison


def _row(rows: list, position: int) -> list | None:
    return rows[position] if position < len(rows) else None


def _routing_divergence(
    reference: SequenceRun, load: Load, prompt: int, layer: int, position: int, ours: list[int], theirs: list[int]
) -> Divergence:
    margin = _margin(reference, layer, position, ours)
    tolerated = load.tolerates_ties and margin is not None and 0 <= margin < NEAR_TIE_MARGIN
    return Divergence(load.name, prompt, layer, position, sorted(ours), sorted(theirs), margin, tolerated)


def _margin(reference: SequenceRun, layer: int, position: int, selected: list[int]) -> float | None:
    """The reference's router margin at a row: kept as such (a trace), or from its full score row."""
    if layer in reference.margins:
        margins = reference.margins[layer]
        return margins[position] if position < len(margins) else None
    scores = _row(reference.scores.get(layer, []), position)
    return router_margin(scores, selected) if scores is not None else None


def _greedy_divergence(reference: SequenceRun, other: SequenceRun, load: Load, prompt: int) -> list[Divergence]:
    step = common_prefix(reference.generated, other.generated)
    if step >= min(len(reference.generated), len(other.generated)):
        return []
    gap = reference.gaps[step]
    position = len(reference.inputs) - len(reference.generated) + 1 + step
    tolerated = load.tolerates_ties and 0 <= gap < GREEDY_TIE_GAP
    return [Divergence(load.name, prompt, None, position, [reference.generated[step]], [other.generated[step]], gap, tolerated)]


def common_prefix(a: list[int], b: list[int]) -> int:
    """How many leading tokens two sequences share."""
    length = 0
    for x, y in zip(a, b):
        if x != y:
            break
        length += 1
    return length


def expert_load(runs: list[SequenceRun], n_expert: int) -> dict[str, list[int]]:
    """Tokens routed to each expert, per layer, over the reference runs."""
    histogram: dict[int, list[int]] = {}
    for run in runs:
        for layer, rows in run.topk.items():
            counts = histogram.setdefault(layer, [0] * n_expert)
            for row in rows:
                for expert in row:
                    if 0 <= expert < n_expert:
                        counts[expert] += 1
    return {str(layer): counts for layer, counts in sorted(histogram.items())}


def _trace(runtime: ModelRuntime, prompts: list[str], threads: int, load: Load) -> list[SequenceRun]:
    result = runtime.request(
        "evaluate",
        prompts=prompts,
        n_predict=GENERATED,
        n_ctx=runtime.options.ctx,
        n_threads=threads,
        n_batch=load.n_batch,
        n_ubatch=load.n_ubatch,
        trace=True,
    )
    return split_sequences(result)


def run_loads(
    runtime: ModelRuntime, loads: tuple[Load, ...], local: ModelRuntime | None = None
) -> tuple[list[SequenceRun], Comparison, dict[str, int]]:
    """The reference runs, and every load compared against them (the placement load on `local`, this machine's CPU)."""
    threads = runtime.options.threads
    reference = [_trace(runtime, [prompt], threads, Load("reference"))[0] for prompt in ROUTING_PROMPTS]
    total = Comparison()
    per_load: dict[str, int] = {}
    for load in loads:
        on = local if load.elsewhere and local is not None else runtime
        runs = (
            _trace(on, list(ROUTING_PROMPTS), threads, load)
            if load.together
            else [_trace(on, [prompt], load.threads or threads, load)[0] for prompt in ROUTING_PROMPTS]
        )
        for index, (expected, observed) in enumerate(zip(reference, runs)):
            comparison = compare_runs(expected, observed, load, index)
            per_load[load.name] = per_load.get(load.name, 0) + len(comparison.divergences)
            total.add(comparison)
    return reference, total, per_load


def _local_runtime(model: ModelUnderTest, runtime: ModelRuntime) -> tuple[ModelRuntime | None, str | None]:
    """This machine's CPU alone, loaded, for the placement load; None and why when the model does not fit here."""
    local = ModelRuntime(model.path, replace(runtime.options, placement=Placement()), announce=runtime.announce)
    try:
        local.loaded()
    except RuntimeUnavailable as failure:
        local.close()
        return None, str(failure).split("\n")[0]
    return local, None


def check_routing_determinism(model: ModelUnderTest) -> Finding:
    facts = model.facts()
    if not facts.is_moe:
        return Finding(
            "routing-determinism",
            Status.NOT_APPLICABLE,
            f"not a Mixture-of-Experts model ({facts.architecture}.expert_count is {facts.expert_count}): no expert routing to trace",
        )
    runtime = model.runtime()
    runtime.loaded()
    distributed = bool(runtime.options.placement.endpoints)
    local, not_here = _local_runtime(model, runtime) if distributed else (None, None)
    loads = tuple(load for load in standard_loads(runtime.options.threads, distributed) if not load.elsewhere or local)
    model.announce(f"{model.label}: tracing expert routing of {len(ROUTING_PROMPTS)} prompts under {len(loads)} standard loads")
    try:
        reference, comparison, per_load = run_loads(runtime, loads, local)
    finally:
        if local is not None:
            local.close()
    if not reference[0].topk:
        return Finding(
            "routing-determinism",
            Status.ERROR,
            "llama.cpp's graph has no ffn_moe_topk-<layer> nodes for this architecture: routing cannot be traced",
        )
    finding = _decide(reference, comparison, per_load, loads, facts.expert_count or 0)
    return _placement_noted(finding, runtime, not_here)


def _placement_noted(finding: Finding, runtime: ModelRuntime, not_here: str | None) -> Finding:
    """The placement the routing ran on, in the evidence; why this machine's CPU was not compared with it."""
    placement = runtime.options.placement
    if not placement.endpoints:
        return finding
    evidence = {**finding.evidence, "placement": placement.describe(), "local_placement_not_compared": not_here}
    note = f"; on this machine's CPU alone not compared ({not_here}): a golden trace (--dfqs-trace) compares them" if not_here else ""
    return Finding(finding.check, finding.status, f"{finding.summary}{note}", evidence)


def _decide(
    reference: list[SequenceRun], comparison: Comparison, per_load: dict[str, int], loads: tuple[Load, ...], n_expert: int
) -> Finding:
    histogram = expert_load(reference, n_expert)
    dead = {layer: [e for e, count in enumerate(counts) if count == 0] for layer, counts in histogram.items()}
    dead = {layer: experts for layer, experts in dead.items() if experts}
    failing = [d for d in comparison.divergences if not d.tolerated]
    ties = [d for d in comparison.divergences if d.tolerated]
    evidence = {
        "loads": [load.name for load in loads],
        "divergences_per_load": per_load,
        "agreement_per_layer": comparison.agreement(),
        "token_rows_compared": sum(comparison.compared.values()),
        "token_rows_unattributed": comparison.unattributed,
        "token_rows_downstream_of_a_divergence": comparison.downstream,
        "divergences": [d.__dict__ for d in (failing + ties)[:LISTED]],
        "tolerated_ties": len(ties),
        "rule": (
            "a repeat must agree exactly; other loads tolerate only ties:"
            f" router margin < {NEAR_TIE_MARGIN}, greedy top-2 gap < {GREEDY_TIE_GAP}"
        ),
        "expert_load": histogram,
        "dead_experts": dead,
        "trace": {str(layer): rows[:COMPACT_TOKENS] for layer, rows in sorted(reference[0].topk.items())},
    }
    warning = f"; warning: experts never chosen in {len(dead)} layer(s)" if dead else ""
    if failing:
        return Finding(
            "routing-determinism",
            Status.NOT_MET,
            f"routing diverges under {failing[0].describe()} ({len(failing)} divergences in all){warning}",
            evidence,
        )
    layers = len(comparison.compared)
    tie_note = f", {len(ties)} numerical ties tolerated (see evidence)" if ties else ""
    return Finding(
        "routing-determinism",
        Status.MET,
        f"expert selections identical in {layers} MoE layers over {sum(comparison.compared.values()):,} token rows"
        f" across {len(loads)} standard loads ({', '.join(load.name for load in loads)}){tie_note}{warning}",
        evidence,
    )
