"""Golden routing traces: record a model's routing once, verify it on any llama.cpp build or machine.

A trace holds, for the standard routing prompts and a standard text, each run
alone at the reference settings: the tokens fed, the greedy output, per MoE
layer and token the selected experts with their router scores and the margin
to the first rejected expert, and per position the top-k next tokens with their
log-probabilities and the probability the rest holds. Arrays travel as base64
(schemas/dfqs-trace-1.schema.json), which keeps a trace of the 43-layer,
256-expert reference near a megabyte.

Verifying feeds the recorded prompt tokens again and compares, up to the first
divergence, expert sets per layer, the top-1 next token at every position and
the greedy output, with the runtime tier's tie rule: a divergence is tolerated,
and reported with its margin, only at a numerical tie. It is evidence for
DFQS-3.3 across builds and machines (check `routing-trace`).
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is imported where it is used: a header-only run never loads it (0.15 s of start-up)
    import numpy as np

from pytest_dfqs.catalogue import SCHEMAS_DIR
from pytest_dfqs.model import ModelUnderTest
from pytest_dfqs.runtime.client import ModelRuntime
from pytest_dfqs.runtime.host import threads_text
from pytest_dfqs.runtime.traces import ROUTING_PROMPTS, decode_matrix
from pytest_dfqs.verdict import Finding, Status

from .routing_determinism import (
    GENERATED,
    GREEDY_TIE_GAP,
    REFERENCE_BATCH,
    Comparison,
    Divergence,
    Load,
    SequenceRun,
    common_prefix,
    compare_runs,
    router_margin,
    split_sequences,
)

TRACE_FORMAT = "dfqs-trace"
TRACE_VERSION = 1
TRACE_SCHEMA = SCHEMAS_DIR / "dfqs-trace-1.schema.json"
TOP_K = 8
STANDARD_TEXT = (
    "A conformance suite reads a model file the way a careful engineer would: it checks the header, loads the weights, "
    "asks for a few hundred tokens and writes down what came back. Routing decides which experts of each layer see a "
    "token; when two builds of the same runtime disagree about that choice, the text they produce can drift apart."
)
TRACE_PROMPTS = (*ROUTING_PROMPTS, STANDARD_TEXT)
CHECK = "routing-trace"
VERIFY_LOAD = Load("recorded trace", tolerates_ties=True)
NO_TRACE = "no golden trace asked for: --dfqs-trace PATH verifies one, --dfqs-trace-record PATH records one"


def pack(array: np.ndarray) -> dict[str, Any]:
    """An array as the trace keeps it: dtype, shape and its bytes in base64."""
    import numpy as np

    return {
        "dtype": str(array.dtype),
        "shape": list(array.shape),
        "base64": base64.b64encode(np.ascontiguousarray(array).tobytes()).decode(),
    }


Run = tuple[SequenceRun, list[dict[str, Any]]]  # a prompt's routing, and its next-token distribution at every position


def traced_run(
    runtime: ModelRuntime, text: str, tokens: list[int] | None, n_predict: int, top_k: int, probe: list[list[int]] | None = None
) -> Run:
    """One prompt alone at the reference settings, given as text or as tokens: its routing and top-k next tokens.

    `probe` names, per position, token ids whose log-probabilities are wanted too.
    """
    result = runtime.request(
        "evaluate",
        prompts=[text],
        token_prompts=[tokens] if tokens is not None else None,
        n_predict=n_predict,
        n_ctx=runtime.options.ctx,
        n_threads=runtime.options.threads,
        n_batch=REFERENCE_BATCH,
        n_ubatch=REFERENCE_BATCH,
        trace=True,
        top_k=top_k,
        probe=[probe] if probe is not None else None,
    )
    if tokens is not None:  # the worker reports lengths of prompts given as tokens
        result["prompt_tokens"] = [tokens]
    return split_sequences(result)[0], result["next_tokens"][0]


def trace_runs(runtime: ModelRuntime, sequences: list[list[int]] | None = None) -> list[Run]:
    """The trace prompts, each run alone with greedy output; `sequences` gives them as token ids (a recorded trace's)."""
    return [
        traced_run(runtime, prompt, sequences[index] if sequences is not None else None, GENERATED, TOP_K)
        for index, prompt in enumerate(TRACE_PROMPTS)
    ]


def record_trace(model: ModelUnderTest, path: Path) -> dict[str, Any]:
    """Run the trace prompts and write the trace file; returns what the finding says of it."""
    runtime = model.runtime()
    loaded = runtime.loaded()
    runs = trace_runs(runtime)
    document = {
        "format": TRACE_FORMAT,
        "format_version": TRACE_VERSION,
        "model": {"file_name": model.path.name, "sha256": model.digest().sha256},
        "conditions": _conditions(runtime, loaded),
        "prompts": [_prompt_entry(text, run, next_tokens) for text, (run, next_tokens) in zip(TRACE_PROMPTS, runs)],
    }
    path.write_text(json.dumps(document, separators=(",", ":")) + "\n", encoding="utf-8")
    return {"recorded_to": str(path), "bytes": path.stat().st_size, "prompts": len(runs), "layers": len(runs[0][0].topk)}


def _conditions(runtime: ModelRuntime, loaded: dict[str, Any]) -> dict[str, Any]:
    return {
        "llama_cpp_build": loaded.get("system_info", ""),
        "llama_cpp_python": loaded.get("llama_cpp_python", ""),
        "threads": runtime.options.threads,
        "n_batch": REFERENCE_BATCH,
        "n_ubatch": REFERENCE_BATCH,
        "ctx": runtime.options.ctx,
        "generated": GENERATED,
        "top_k": TOP_K,
    }


def _prompt_entry(text: str, run: SequenceRun, next_tokens: list[dict[str, Any]]) -> dict[str, Any]:
    import numpy as np

    prompt_length = len(run.inputs) - len(run.generated) + 1
    return {
        "text": text,
        "tokens": run.inputs,
        "prompt_length": prompt_length,
        "generated": run.generated,
        "top2_gaps": [gap if math.isfinite(gap) else None for gap in run.gaps],
        "routing": {str(layer): _routing_entry(rows, run.scores.get(layer, [])) for layer, rows in sorted(run.topk.items())},
        "next_tokens": {
            "ids": pack(np.array([row["ids"] for row in next_tokens], dtype=np.int32)),
            "logprobs": pack(np.array([row["logprobs"] for row in next_tokens], dtype=np.float32)),
            "rest": pack(np.array([row["rest"] for row in next_tokens], dtype=np.float32)),
        },
    }


def _routing_entry(selected: list[list[int]], scores: list[Any]) -> dict[str, Any]:
    """Selected experts, their router scores, and the margin to the first rejected expert, per token."""
    import numpy as np

    experts = np.array(selected, dtype=np.int32)
    chosen = np.array([[float(row[e]) if row is not None and e < len(row) else np.nan for e in ids] for ids, row in zip(selected, scores)])
    margins = np.array([_margin_or_nan(row, ids) for ids, row in zip(selected, scores)], dtype=np.float32)
    compact = experts.astype(np.int16) if experts.size and experts.max() < 2**15 else experts
    return {"experts": pack(compact), "scores": pack(chosen.astype(np.float32)), "margins": pack(margins)}


def _margin_or_nan(row: Any, selected: list[int]) -> float:
    margin = router_margin(row, selected) if row is not None else None
    return float("nan") if margin is None else margin


class TraceRefused(Exception):
    """A trace file that cannot be verified against this model: malformed, or recorded for another file."""


def load_trace(path: Path, sha256: str) -> dict[str, Any]:
    """The trace in `path`, checked against its schema and against the model's digest."""
    import jsonschema  # the schema is checked only when a trace is verified

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise TraceRefused(f"{path} cannot be read as a trace ({error})") from None
    problem = next(jsonschema.Draft202012Validator(json.loads(TRACE_SCHEMA.read_text())).iter_errors(document), None)
    if problem is not None:
        where = "/".join(map(str, problem.absolute_path)) or "(trace)"
        raise TraceRefused(f"{path} is not a dfqs trace: {where}: {problem.message}")
    recorded = document["model"]["sha256"]
    if recorded != sha256:
        raise TraceRefused(f"{path} was recorded for {document['model']['file_name']} (SHA-256 {recorded}); this file's is {sha256}")
    trace: dict[str, Any] = document
    return trace


def recorded_runs(document: dict[str, Any]) -> list[tuple[SequenceRun, dict[str, np.ndarray]]]:
    """The trace's prompts as runs to compare with, and their next-token arrays."""
    runs = []
    for prompt in document["prompts"]:
        routing = prompt["routing"]
        run = SequenceRun(
            inputs=prompt["tokens"],
            generated=prompt["generated"],
            gaps=[gap if gap is not None else float("nan") for gap in prompt["top2_gaps"]],
            topk={int(layer): decode_matrix(entry["experts"]).tolist() for layer, entry in routing.items()},
            scores={},
            margins={int(layer): _margins(entry) for layer, entry in routing.items()},
        )
        runs.append((run, {name: decode_matrix(entry) for name, entry in prompt["next_tokens"].items()}))
    return runs


def _margins(entry: dict[str, Any]) -> list[float | None]:
    import numpy as np

    return [None if np.isnan(margin) else float(margin) for margin in decode_matrix(entry["margins"])]


def verify_trace(model: ModelUnderTest, path: Path) -> Finding:
    """This build's routing and next tokens against the recorded trace, up to the first divergence of each prompt."""
    try:
        document = load_trace(path, model.digest().sha256)
    except TraceRefused as refused:
        return Finding(CHECK, Status.NOT_EVALUATED, f"trace refused: {refused}", {"trace": str(path)})
    recorded = recorded_runs(document)
    if len(recorded) != len(TRACE_PROMPTS):
        held = f"{path} holds {len(recorded)} prompts, this version traces {len(TRACE_PROMPTS)}"
        return Finding(CHECK, Status.NOT_EVALUATED, f"trace refused: {held}")
    prompt_lengths = [prompt["prompt_length"] for prompt in document["prompts"]]
    current = trace_runs(model.runtime(), [run.inputs[:length] for (run, _), length in zip(recorded, prompt_lengths)])
    comparison = Comparison()
    for index, ((expected, expected_next), (observed, observed_next)) in enumerate(zip(recorded, current)):
        routing = compare_runs(expected, observed, VERIFY_LOAD, index)
        comparison.add(routing)
        judged = _judged_positions(expected, observed, routing)
        comparison.divergences += _top1_divergences(index, expected, expected_next, observed_next, judged)
    return _verdict(path, document, comparison)


def _judged_positions(expected: SequenceRun, observed: SequenceRun, routing: Comparison) -> int:
    """Positions whose next token is judged: those fed alike, before the first routing divergence."""
    fed = common_prefix(expected.inputs, observed.inputs)
    first = min((d.position for d in routing.divergences if d.layer is not None), default=fed)
    return min(fed, first + 1)


def _top1_divergences(
    prompt: int, expected: SequenceRun, recorded: dict[str, np.ndarray], observed: list[dict[str, Any]], positions: int
) -> list[Divergence]:
    """The first position whose most likely next token differs; tolerated when the recorded top-2 gap is a tie."""
    ids, logprobs = recorded["ids"], recorded["logprobs"]
    for position in range(min(positions, len(ids), len(observed))):
        ours, theirs = int(ids[position][0]), observed[position]["ids"][0]
        if ours != theirs:
            gap = float(logprobs[position][0] - logprobs[position][1]) if logprobs.shape[1] > 1 else None
            tolerated = gap is not None and 0 <= gap < GREEDY_TIE_GAP
            return [Divergence(VERIFY_LOAD.name, prompt, None, position, [ours], [theirs], gap, tolerated)]
    return []


def _verdict(path: Path, document: dict[str, Any], comparison: Comparison) -> Finding:
    failing = [d for d in comparison.divergences if not d.tolerated]
    ties = [d for d in comparison.divergences if d.tolerated]
    conditions = document["conditions"]
    evidence = {
        "trace": str(path),
        "recorded_with": {key: conditions[key] for key in ("llama_cpp_python", "llama_cpp_build", "threads")},
        "agreement_per_layer": comparison.agreement(),
        "token_rows_compared": sum(comparison.compared.values()),
        "token_rows_downstream_of_a_divergence": comparison.downstream,
        "divergences": [d.__dict__ for d in (failing + ties)[:10]],
        "tolerated_ties": len(ties),
    }
    if failing:
        summary = f"this build diverges from the recorded trace: {_place(failing[0])} ({len(failing)} in all)"
        return Finding(CHECK, Status.NOT_MET, summary, evidence)
    tie_note = f", {len(ties)} numerical ties tolerated (see evidence)" if ties else ""
    rows, prompts = sum(comparison.compared.values()), len(document["prompts"])
    return Finding(
        CHECK,
        Status.MET,
        f"routing of {len(comparison.compared)} MoE layers over {rows:,} token rows and the top-1 next tokens of {prompts}"
        f" prompts agree with the trace recorded by llama-cpp-python {conditions['llama_cpp_python']},"
        f" {threads_text(conditions['threads'])}{tie_note}",
        evidence,
    )


def _place(divergence: Divergence) -> str:
    """Prompt, layer, token and margin of a divergence, as the NOT MET says it."""
    margin = "n/a" if divergence.margin is None else f"{divergence.margin:.3g}"
    if divergence.layer is None:
        return (
            f"prompt {divergence.prompt}, next token at position {divergence.position}:"
            f" {divergence.reference} vs {divergence.other} (top-2 gap {margin})"
        )
    return (
        f"prompt {divergence.prompt}, layer {divergence.layer}, token position {divergence.position}:"
        f" experts {divergence.reference} vs {divergence.other} (router margin {margin})"
    )


def check_routing_trace(model: ModelUnderTest) -> Finding:
    """Record a trace (--dfqs-trace-record), verify against one (--dfqs-trace), or say neither was asked."""
    options = model.trace_options
    if not model.facts().is_moe:
        return Finding(CHECK, Status.NOT_APPLICABLE, "not a Mixture-of-Experts model: no expert routing to trace")
    if options.record is None and options.verify is None:
        return Finding(CHECK, Status.NOT_APPLICABLE, NO_TRACE)
    recorded = record_trace(model, options.record) if options.record is not None else None
    if options.verify is None:
        assert recorded is not None
        what = f"trace of {recorded['prompts']} prompts over {recorded['layers']} MoE layers"
        return Finding(CHECK, Status.MET, f"{what} recorded to {options.record} ({recorded['bytes']:,} bytes)", recorded)
    finding = verify_trace(model, options.verify)
    return Finding(finding.check, finding.status, finding.summary, {**finding.evidence, **({"recorded": recorded} if recorded else {})})
