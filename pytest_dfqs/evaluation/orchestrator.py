"""Section 11: the five required metrics of one model, measured once, under one set of conditions.

One evaluation per model computes reasoning_score, code_score,
context_stability_curve, cpu_tokens_per_sec and failure_boundary_tokens with
the budget's fixed subsets, greedy decoding and the runtime tier's threads and
context, and records the conditions beside them (`record` describes the
record). Routing under pressure (section 10) is measured last, into the
details: a failure there must not cost the five metrics. It takes minutes to hours, so the record is kept in the model's cache
and every eval-tier check reads the same one.
"""

from __future__ import annotations

import contextlib
import datetime
from typing import Any

from pytest_dfqs import __version__
from pytest_dfqs.model import ModelUnderTest
from pytest_dfqs.runtime.host import cpu_model

from .budget import BUDGETS, Budget
from .code import MAX_TOKENS as CODE_TOKENS
from .code import SET_ID as CODE_SET
from .code import load_problems, measure_code, refuse_unsandboxed
from .context_stability import CONTEXT_SET_ID, context_lengths, context_set_digest, measure
from .journal import Journal
from .prompt_mode import resolve_mode
from .reasoning import MAX_TOKENS as REASONING_TOKENS
from .reasoning import SEED, load_set, measure_reasoning
from .reasoning import SET_ID as REASONING_SET
from .record import METRICS_FORMAT, METRICS_VERSION, REQUIRED, write_record
from .routing_pressure import ROUTING_SET_ID, PressurePoints, measure_pressure, not_moe, pressure_points, routing_set_digest
from .sandbox import isolation_layers, unsandboxed_problem
from .throughput import measure_throughput


def evaluation(model: ModelUnderTest) -> dict[str, Any]:
    """The model's metrics record, measured on first request with the budget in force."""
    if model.metrics_record is None:
        model.metrics_record = evaluate(model, BUDGETS[model.eval_options.budget], model.benchmark)
    return model.metrics_record


UNSANDBOXED_OPTION = "--dfqs-allow-unsandboxed-code"


def evaluate(model: ModelUnderTest, budget: Budget, benchmark: Any = None) -> dict[str, Any]:
    """Run the five measurements on one model; the record holds values, conditions and details."""
    refuse_unsandboxed(model.eval_options.allow_unsandboxed_code)  # before any measurement: nothing is run in vain
    if unsandboxed_problem() is not None:
        model.announce(
            f"{model.label}: WARNING: model-written code runs WITHOUT operating-system isolation (--dfqs-allow-unsandboxed-code)"
        )
    runtime = model.runtime()
    loaded = runtime.loaded()
    facts = model.facts()
    lengths = context_lengths(facts.context_length, budget.max_context)
    points = pressure_points(runtime.options.ctx, budget)
    mode, fallback, rendering = resolve_mode(runtime, model.eval_options.prompt_mode, any(t.dangerous for t in model.templates()))
    if fallback is not None:
        model.announce(f"{model.label}: {fallback}")
    conditions = _conditions(model, budget, loaded, lengths, points, mode)
    journal = _journal(model, conditions)
    model.announce(
        f"{model.label}: evaluating with budget {budget.name}"
        f" (reasoning, code, context stability, throughput, routing under pressure){_resuming(journal)}"
    )
    try:
        reasoning = measure_reasoning(runtime, budget, mode, journal)
        code = measure_code(runtime, budget, model.path, mode, journal)
        stability = measure(runtime, lengths, budget.depths, journal)
        speed = measure_throughput(runtime, budget, benchmark, journal)
        pressure = measure_pressure(runtime, points, journal) if facts.is_moe else not_moe(facts)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: what was measured goes into a record marked interrupted
        _write_interrupted(model, conditions, journal)
        raise
    boundary, lower_bound = stability.boundary()
    return {
        **_record_head(model, conditions),
        "reasoning_score": reasoning["score"],
        "code_score": code["score"],
        "context_stability_curve": stability.curve,
        "cpu_tokens_per_sec": speed["decode_tokens_per_sec"],
        "failure_boundary_tokens": boundary,
        "conditions": conditions,
        "details": {
            "reasoning": reasoning,
            "code": code,
            "context_stability": {
                "lengths": stability.lengths,
                "quality": stability.quality,
                "retrieved": stability.retrieved,
                "recall": stability.recall,
                "prompt_tokens_computed": stability.prompt_tokens_computed,
                "failure": stability.failure,
                "memory_limit": stability.memory_limit,
                "failure_boundary_is_lower_bound": lower_bound,
            },
            "throughput": speed,
            "routing_pressure": pressure,
            "prompt_mode": {"asked": model.eval_options.prompt_mode, "used": mode, "fallback": fallback, "chat_rendering": rendering},
            "journal": journal.summary(),
            "pytest_dfqs": __version__,
        },
    }


def _record_head(model: ModelUnderTest, conditions: dict[str, Any]) -> dict[str, Any]:
    """What every metrics record begins with: its format, when it was made, which model."""
    return {
        "format": METRICS_FORMAT,
        "format_version": METRICS_VERSION,
        "datetime": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "model": {"file_name": model.path.name, "sha256": conditions["model_sha256"]},
    }


def _write_interrupted(model: ModelUnderTest, conditions: dict[str, Any], journal: Journal) -> None:
    """The record of an interrupted evaluation: no metrics, the items measured so far, and where to resume from."""
    path = model.eval_options.metrics_path
    if path is None:
        return
    measured: dict[str, dict[str, Any]] = {}
    for (kind, item), result in journal.entries.items():
        measured.setdefault(kind, {})[item] = result
    record = {
        **_record_head(model, conditions),
        "interrupted": True,
        **dict.fromkeys(REQUIRED),
        "conditions": conditions,
        "details": {"measured": measured, "journal": journal.summary(), "pytest_dfqs": __version__},
    }
    with contextlib.suppress(OSError):  # the interrupt is what the user sees; a record that cannot be written must not hide it
        write_record(path, record)


def _journal(model: ModelUnderTest, conditions: dict[str, Any]) -> Journal:
    """The model's journal in the journal folder, named by its digest; none when there is no folder."""
    folder = model.eval_options.journal_dir
    path = folder / f"{conditions['model_sha256']}.jsonl" if folder is not None else None
    return Journal(path, conditions, model.eval_options.resume, lambda line: model.announce(f"{model.label}: {line}"))


def _resuming(journal: Journal) -> str:
    return f"; resuming {len(journal.entries)} items from {journal.path}" if journal.resumed else ""


def placement_conditions(record: dict[str, Any] | None) -> dict[str, Any]:
    """Where the layers were, as a condition: the runtime's placement record (`ModelRuntime.placement_record`) without
    what changes between runs (each device's free memory, the preflight's plan); nothing for this machine alone."""
    if record is None:
        return {}
    devices = [{key: device[key] for key in ("endpoint", "name", "total_bytes")} for device in record["devices"]]
    return {"placement": {key: value for key, value in record.items() if key != "planned"} | {"devices": devices}}


def _conditions(
    model: ModelUnderTest, budget: Budget, loaded: dict[str, Any], lengths: list[int], points: PressurePoints, mode: str
) -> dict[str, Any]:
    """The recorded conditions, known before anything is measured: the journal is keyed by them."""
    options = model.runtime_options()
    reasoning = load_set()
    problems, code_digest = load_problems()
    return {
        "prompt_mode": mode,
        "prompt_sets": {
            "reasoning": {
                "id": REASONING_SET,
                "sha256": reasoning.sha256,
                "items": len(reasoning.items[: budget.reasoning_items]),
                "max_tokens": dict(REASONING_TOKENS),
            },
            "code": {
                "id": CODE_SET,
                "sha256": code_digest,
                "problems": len(problems[: budget.code_problems]),
                "max_tokens": CODE_TOKENS[mode],
                "isolation": list(isolation_layers()),  # the walls around each program: results under others are not reused
                "unsandboxed_by_choice": unsandboxed_problem() is not None,
            },
            "context": {"id": CONTEXT_SET_ID, "sha256": context_set_digest(), "lengths": lengths, "depths": list(budget.depths)},
            "routing": {
                "id": ROUTING_SET_ID,
                "sha256": routing_set_digest(),
                "fills": list(points.fills),
                "sequences": list(points.sequences),
            },
        },
        "budget": budget.name,
        "runtime": "llama.cpp",
        "backend": "RPC" if options.placement.endpoints else "CPU",
        **placement_conditions(model.runtime().placement_record()),
        "llama_cpp_python": loaded["llama_cpp_python"],
        "llama_cpp_build": loaded["system_info"],
        "threads": options.threads,
        "ctx": options.ctx,
        "prefix_reuse": options.prefix_reuse,
        "eval_sequences": options.sequences,
        "sampling": {"decoding": "greedy", "temperature": 0.0, "top_k": 1},
        "seed": SEED,
        "cpu": cpu_model(),
        "model_sha256": model.digest().sha256,
    }
