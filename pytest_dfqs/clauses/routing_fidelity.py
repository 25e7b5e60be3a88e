"""What quantization did to a model: its next tokens and its expert routing against a higher-precision reference.

`--dfqs-reference-model` names a GGUF of the same weights at higher precision
(same architecture and tokenizer). The reference is fed the trace prompts
first; it is then stopped, and the model under test is fed the same token
sequences in the same batches, so every position is compared on the same
input (a model against itself agrees bit for bit). The two are never loaded together: memory stays
that of the larger one.

Measured, as llama-perplexity's --kl-divergence does and quantizers publish:
- KL(reference || model) of the next-token distributions, per position, from
  the reference's top-k log-probabilities, the model's log-probabilities of the
  same ids, and one bucket for everything else. Merging the tail into one
  bucket can only lower a KL divergence (log-sum inequality), so the figure is
  a lower bound; the missing part is the reference's tail mass r times the KL
  of the two tails, at most r * log(r / q_tail_min). The evidence reports r.
- the same-top-token rate;
- per MoE layer: the overlap of the selected expert sets (|A ∩ B| / k), the
  agreement of the top-1 expert, and the overlap weighted by the reference's
  router scores.

"Expert Coherence | Preserved" (section 10) is read as: the mean expert-set
overlap over all MoE layers is at least PRESERVED_OVERLAP.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

from pytest_dfqs.model import ModelUnderTest
from pytest_dfqs.runtime.client import ModelRuntime
from pytest_dfqs.verdict import Finding, Status

from .routing_determinism import SequenceRun
from .routing_trace import TRACE_PROMPTS, Run, traced_run

CHECK = "routing-fidelity"
FIDELITY_TOP_K = 64  # next tokens compared per position: the tail bucket that bounds the KL error gets small
PRESERVED_OVERLAP = 0.9
TAIL_FLOOR = 1e-12  # a probability bucket llama.cpp's float32 softmax can still tell from zero


def reference_runs(model: ModelUnderTest, reference: Path) -> list[Run]:
    """The reference fed the trace prompts, with the model under test unloaded meanwhile (never both in memory)."""
    model.unload()
    runtime = ModelRuntime(reference, model.runtime_options(), announce=lambda line: model.announce(f"{reference.name}: {line}"))
    try:
        sequences = [runtime.request("tokenize", text=text) for text in TRACE_PROMPTS]
        return forced_runs(runtime, sequences)
    finally:
        runtime.close()


def forced_runs(runtime: ModelRuntime, sequences: list[list[int]], probe: list[list[list[int]]] | None = None) -> list[Run]:
    """Each token sequence fed whole at the reference settings, every position's top-k next tokens kept.

    `probe` names, per sequence and position, the ids whose log-probabilities are wanted (the reference's top-k).
    Both models compute alike: the same batches, the same positions.
    """
    return [
        traced_run(runtime, "", tokens, 1, FIDELITY_TOP_K, probe[index] if probe is not None else None)
        for index, tokens in enumerate(sequences)
    ]


def kl_lower_bound(reference: dict[str, Any], probed: list[float | None]) -> float:
    """KL(P || Q) over the reference's top-k ids and one bucket for the rest (a lower bound of the full KL)."""
    import numpy as np

    p = np.exp(np.array(reference["logprobs"], dtype=np.float64))
    q = np.exp(np.array([value if value is not None else -np.inf for value in probed], dtype=np.float64))
    p_rest, q_rest = max(1.0 - p.sum(), 0.0), max(1.0 - q.sum(), TAIL_FLOOR)
    head = float(np.sum(p * (np.log(p) - np.log(np.maximum(q, TAIL_FLOOR)))))
    return head + (p_rest * float(np.log(p_rest / q_rest)) if p_rest > 0 else 0.0)


def expert_agreement(reference: SequenceRun, model: SequenceRun) -> dict[str, dict[str, float]]:
    """Per MoE layer: mean set overlap, top-1 expert agreement, and overlap weighted by the reference's router scores."""
    per_layer = {}
    for layer, rows in sorted(reference.topk.items()):
        theirs = model.topk.get(layer, [])
        pairs = [(ours, other, reference.scores[layer][i], model.scores[layer][i]) for i, (ours, other) in enumerate(zip(rows, theirs))]
        per_layer[str(layer)] = {
            "overlap": statistics.fmean(len(set(a) & set(b)) / len(a) for a, b, _, _ in pairs),
            "top1": statistics.fmean(_top1(a, sa) == _top1(b, sb) for a, b, sa, sb in pairs),
            "weighted": statistics.fmean(_weighted(a, b, sa) for a, b, sa, _ in pairs),
        }
    return per_layer


def _top1(selected: list[int], scores: Any) -> int:
    return max(selected, key=lambda expert: float(scores[expert]))


def _weighted(ours: list[int], theirs: list[int], scores: Any) -> float:
    total = sum(float(scores[e]) for e in ours)
    return sum(float(scores[e]) for e in ours if e in theirs) / total if total > 0 else float(set(ours) == set(theirs))


def compare(reference: list[Run], model: list[Run]) -> dict[str, Any]:
    """The fidelity figures over every position of every trace prompt."""
    divergences, same_top, tails = [], [], []
    layers: dict[str, list[dict[str, float]]] = {}
    for (ref_run, ref_next), (run, next_tokens) in zip(reference, model):
        for ours, theirs in zip(ref_next, next_tokens):
            divergences.append(kl_lower_bound(ours, theirs["probed"]))
            same_top.append(ours["ids"][0] == theirs["ids"][0])
            tails.append(ours["rest"])
        for layer, figures in expert_agreement(ref_run, run).items():
            layers.setdefault(layer, []).append(figures)
    return {
        "positions": len(divergences),
        "kl": _summary(divergences),
        "same_top_token": statistics.fmean(same_top),
        "reference_tail_mass": {"mean": statistics.fmean(tails), "max": max(tails)},
        "experts_per_layer": {layer: _mean_of(rows) for layer, rows in layers.items()},
        "top_k": FIDELITY_TOP_K,
    }


def _summary(values: list[float]) -> dict[str, float]:
    import numpy as np

    array = np.array(values)
    return {
        "mean": float(array.mean()),
        "median": float(np.median(array)),
        "p99": float(np.percentile(array, 99)),
        "max": float(array.max()),
    }


def _mean_of(rows: list[dict[str, float]]) -> dict[str, float]:
    return {name: statistics.fmean(row[name] for row in rows) for name in rows[0]}


def check_routing_fidelity(model: ModelUnderTest) -> Finding:
    """Section 10's "Expert Coherence | Preserved" against --dfqs-reference-model: measured, then decided by PRESERVED_OVERLAP.

    A dense model has no routing to preserve (NOT APPLICABLE), but its next-token figures are measured all the same.
    """
    reference = model.trace_options.reference
    if reference is None:
        return Finding(CHECK, Status.NOT_EVALUATED, "needs --dfqs-reference-model PATH (a higher-precision GGUF of the same weights)")
    model.announce(f"{model.label}: comparing next tokens and routing with {reference.name}")
    runs = reference_runs(model, reference)
    sequences = [run.inputs for run, _ in runs]
    if [model.runtime().request("tokenize", text=text) for text in TRACE_PROMPTS] != sequences:
        mismatch = "the reference model tokenizes the trace prompts differently: not the same tokenizer, no position-by-position comparison"
        return Finding(CHECK, Status.NOT_EVALUATED, mismatch, {"reference": str(reference)})
    probe = [[row["ids"] for row in next_tokens] for _, next_tokens in runs]
    figures = compare(runs, forced_runs(model.runtime(), sequences, probe))
    evidence: dict[str, Any] = {"reference": str(reference), "fidelity": figures, "preserved_at": PRESERVED_OVERLAP}
    plot = model.trace_options.fidelity_plot
    if plot is not None and figures["experts_per_layer"]:
        evidence["plot"] = plot_fidelity(figures, reference.name, plot)
    tokens = f"same top token {figures['same_top_token']:.3f}, KL mean {figures['kl']['mean']:.4f} (p99 {figures['kl']['p99']:.4f})"
    if not figures["experts_per_layer"]:
        return Finding(
            CHECK,
            Status.NOT_APPLICABLE,
            f"not a Mixture-of-Experts model, no routing to compare; against {reference.name}: {tokens}",
            evidence,
        )
    overlap = statistics.fmean(layer["overlap"] for layer in figures["experts_per_layer"].values())
    evidence["mean_expert_overlap"] = overlap
    said = f"against {reference.name}: mean expert-set overlap {overlap:.3f} over {len(figures['experts_per_layer'])} MoE layers, {tokens}"
    if overlap >= PRESERVED_OVERLAP:
        return Finding(CHECK, Status.MET, f"{said}: preserved (>= {PRESERVED_OVERLAP})", evidence)
    return Finding(CHECK, Status.NOT_MET, f"{said}: below {PRESERVED_OVERLAP}, not preserved", evidence)


def plot_fidelity(figures: dict[str, Any], reference: str, path: Path) -> str | None:
    """Expert agreement per MoE layer as a PNG; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        return None
    layers = sorted(figures["experts_per_layer"], key=int)
    figure, axes = pyplot.subplots(figsize=(7, 4), dpi=120)
    for name, label in (("overlap", "expert-set overlap"), ("top1", "top-1 expert agreement"), ("weighted", "score-weighted overlap")):
        axes.plot(
            [int(layer) for layer in layers], [figures["experts_per_layer"][layer][name] for layer in layers], marker="o", label=label
        )
    axes.axhline(PRESERVED_OVERLAP, color="tab:red", linestyle="--", label=f"preserved at {PRESERVED_OVERLAP}")
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("MoE layer")
    axes.set_ylabel("agreement with the reference")
    kl = figures["kl"]
    axes.set_title(
        f"routing fidelity against {reference}\nKL mean {kl['mean']:.4f}, same top token {figures['same_top_token']:.3f}", fontsize=9
    )
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
    return str(path)
