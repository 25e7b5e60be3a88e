"""Section 11: the five required metrics of one model, measured once, under one set of conditions.

One evaluation per model computes reasoning_score, code_score,
context_stability_curve, cpu_tokens_per_sec and failure_boundary_tokens with
the budget's fixed subsets, greedy decoding and the runtime tier's threads and
context, and records the conditions beside them (`record` describes the
record). It takes minutes to hours, so the record is kept in the model's cache
and every eval-tier check reads the same one.
"""

from __future__ import annotations

import datetime
from typing import Any

from pytest_dfqs import __version__
from pytest_dfqs.model import ModelUnderTest
from pytest_dfqs.runtime.host import cpu_model

from .budget import BUDGETS, Budget
from .code import measure_code
from .context_stability import CONTEXT_SET_ID, context_lengths, context_set_digest, measure
from .reasoning import SEED, measure_reasoning
from .record import METRICS_FORMAT, METRICS_VERSION
from .throughput import measure_throughput


def evaluation(model: ModelUnderTest) -> dict[str, Any]:
    """The model's metrics record, measured on first request with the budget in force."""
    if model.metrics_record is None:
        model.metrics_record = evaluate(model, BUDGETS[model.eval_options.budget], model.benchmark)
    return model.metrics_record


def evaluate(model: ModelUnderTest, budget: Budget, benchmark: Any = None) -> dict[str, Any]:
    """Run the five measurements on one model; the record holds values, conditions and details."""
    runtime = model.runtime()
    loaded = runtime.loaded()
    model.announce(f"{model.label}: evaluating with budget {budget.name} (reasoning, code, context stability, throughput)")
    reasoning = measure_reasoning(runtime, budget)
    code = measure_code(runtime, budget, model.path)
    lengths = context_lengths(model.facts().context_length, budget.max_context)
    stability = measure(runtime, lengths, budget.depths)
    boundary, lower_bound = stability.boundary()
    speed = measure_throughput(runtime, budget, benchmark)
    return {
        "format": METRICS_FORMAT,
        "format_version": METRICS_VERSION,
        "datetime": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "model": {"file_name": model.path.name, "sha256": model.digest().sha256},
        "reasoning_score": reasoning["score"],
        "code_score": code["score"],
        "context_stability_curve": stability.curve,
        "cpu_tokens_per_sec": speed["decode_tokens_per_sec"],
        "failure_boundary_tokens": boundary,
        "conditions": _conditions(model, budget, loaded, reasoning, code, lengths),
        "details": {
            "reasoning": reasoning,
            "code": code,
            "context_stability": {
                "lengths": stability.lengths,
                "quality": stability.quality,
                "retrieved": stability.retrieved,
                "failure": stability.failure,
                "memory_limit": stability.memory_limit,
                "failure_boundary_is_lower_bound": lower_bound,
            },
            "throughput": speed,
            "pytest_dfqs": __version__,
        },
    }


def _conditions(
    model: ModelUnderTest, budget: Budget, loaded: dict[str, Any], reasoning: dict[str, Any], code: dict[str, Any], lengths: list[int]
) -> dict[str, Any]:
    options = model.runtime_options()
    return {
        "prompt_sets": {
            "reasoning": {"id": reasoning["set"], "sha256": reasoning["sha256"], "items": reasoning["items"]},
            "code": {"id": code["set"], "sha256": code["sha256"], "problems": code["problems"]},
            "context": {"id": CONTEXT_SET_ID, "sha256": context_set_digest(), "lengths": lengths, "depths": list(budget.depths)},
        },
        "budget": budget.name,
        "runtime": "llama.cpp",
        "backend": "CPU",
        "llama_cpp_python": loaded["llama_cpp_python"],
        "llama_cpp_build": loaded["system_info"],
        "threads": options.threads,
        "ctx": options.ctx,
        "sampling": {"decoding": "greedy", "temperature": 0.0, "top_k": 1},
        "seed": SEED,
        "cpu": cpu_model(),
        "model_sha256": model.digest().sha256,
    }
