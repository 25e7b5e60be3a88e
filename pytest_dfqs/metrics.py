"""Section 11: the five required metrics, under identical, recorded conditions.

One evaluation per model computes reasoning_score, code_score,
context_stability_curve, cpu_tokens_per_sec and failure_boundary_tokens with
the budget's fixed subsets, greedy decoding and the runtime tier's threads and
context, and records the conditions beside them. The record is what
--dfqs-metrics writes; schemas/dfqs-metrics-1.schema.json describes it. The
SHALL clause is MET only when the record validates and every value is finite;
the MUST clause compares conditions with a baseline record when one is given.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from . import __version__
from .catalogue import SCHEMAS_DIR
from .code_generation import SET_ID as CODE_SET_ID
from .code_generation import load_problems, score_completion, solve
from .context_stability import CODES, FILLER, QUESTION, measure, plot_stability, context_lengths
from .cpu_operation import GENERATION_PROMPT, generate, throughput
from .reasoning import SET_ID as REASONING_SET_ID
from .reasoning import SEED, is_correct, load_set, wilson_interval
from .verdict import Finding, Status

if TYPE_CHECKING:
    from .model import ModelUnderTest
    from .runtime import ModelRuntime

METRICS_FORMAT = "dfqs-metrics"
METRICS_VERSION = 1
METRICS_SCHEMA = SCHEMAS_DIR / "dfqs-metrics-1.schema.json"
CONTEXT_SET_ID = "dfqs-context-v1"
REQUIRED = ("reasoning_score", "code_score", "context_stability_curve", "cpu_tokens_per_sec", "failure_boundary_tokens")
NOT_COMPARED = ("model_sha256",)  # what differs between the models being compared, by design
REASONING_STOP = ["\nQuestion", "\n\n"]
REASONING_MAX_TOKENS = 16


@dataclass(frozen=True)
class Budget:
    """A documented, fixed subset of every prompt set; part of the conditions."""

    name: str
    reasoning_items: int | None  # None: the whole set
    code_problems: int | None
    max_context: int
    depths: tuple[float, ...]
    throughput_rounds: int
    throughput_tokens: int


BUDGETS = {
    "quick": Budget("quick", 40, 10, 2048, (0.25, 0.75), 3, 32),
    "standard": Budget("standard", 160, 40, 16384, (0.1, 0.5, 0.9), 5, 64),
    "full": Budget("full", None, None, 1 << 40, (0.1, 0.35, 0.65, 0.9), 10, 128),
}


@dataclass(frozen=True)
class Evaluation:
    record: dict[str, Any]


def evaluate(model: ModelUnderTest, budget: Budget, benchmark: Any = None) -> Evaluation:
    """Run the five measurements on one model; the record holds values, conditions and details."""
    runtime = model.runtime()
    loaded = runtime.loaded()
    threads = runtime.options.threads
    model.announce(f"{model.label}: evaluating with budget {budget.name} (reasoning, code, context stability, throughput)")
    reasoning = _reasoning(runtime, budget, threads)
    code = _code(runtime, budget, threads, model.path)
    lengths = context_lengths(model.facts().context_length, budget.max_context)
    stability = measure(runtime, lengths, budget.depths, threads)
    boundary, lower_bound = stability.boundary()
    speed = _throughput(runtime, budget, benchmark)
    record = {
        "format": METRICS_FORMAT,
        "format_version": METRICS_VERSION,
        "datetime": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
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
            "context_stability": {"lengths": stability.lengths, "quality": stability.quality, "retrieved": stability.retrieved,
                                  "failure": stability.failure, "memory_limit": stability.memory_limit,
                                  "failure_boundary_is_lower_bound": lower_bound},
            "throughput": speed,
            "pytest_dfqs": __version__,
        },
    }
    return Evaluation(record)


def _reasoning(runtime: ModelRuntime, budget: Budget, threads: int) -> dict[str, Any]:
    items, digest = load_set()
    chosen = items[: budget.reasoning_items]
    outcomes = []
    for item in chosen:
        output = runtime.request("complete", prompt=item.prompt(), max_tokens=REASONING_MAX_TOKENS, stop=REASONING_STOP,
                                 n_ctx=runtime.options.ctx, n_threads=threads)["text"]
        outcomes.append({"id": item.id, "kind": item.kind, "answer": item.answer, "output": output, "correct": is_correct(item, output)})
    correct = sum(o["correct"] for o in outcomes)
    low, high = wilson_interval(correct, len(outcomes))
    return {"set": REASONING_SET_ID, "sha256": digest, "items": len(outcomes), "correct": correct,
            "score": correct / len(outcomes), "wilson_95": [low, high], "outcomes": outcomes}


def _code(runtime: ModelRuntime, budget: Budget, threads: int, model_path: Path) -> dict[str, Any]:
    problems, digest = load_problems()
    chosen = problems[: budget.code_problems]
    outcomes = []
    for problem in chosen:
        completion = solve(runtime, problem, runtime.options.ctx, threads)
        result = score_completion(problem, completion, model_path)
        outcomes.append({"task_id": problem.task_id, "status": result.status, "detail": result.detail, "completion": completion})
    passed = sum(o["status"] == "passed" for o in outcomes)
    return {"set": CODE_SET_ID, "sha256": digest, "problems": len(outcomes), "passed": passed,
            "score": passed / len(outcomes), "outcomes": outcomes}


def _throughput(runtime: ModelRuntime, budget: Budget, benchmark: Any) -> dict[str, Any]:
    """Decode throughput over warmed-up rounds; pytest-benchmark drives the rounds when it is active."""
    runs: list[dict[str, Any]] = []

    def one_round() -> None:
        runs.append(generate(runtime, GENERATION_PROMPT, budget.throughput_tokens))

    generate(runtime, GENERATION_PROMPT, 8)  # warm-up: caches, page faults, thread pools
    _rounds(one_round, budget.throughput_rounds, benchmark)
    rates = [throughput(run) for run in runs]
    return {
        "decode_tokens_per_sec": statistics.median(r["decode_tokens_per_sec"] for r in rates),
        "prompt_tokens_per_sec": statistics.median(r["prompt_tokens_per_sec"] for r in rates),
        "rounds": len(runs),
        "tokens_per_round": budget.throughput_tokens,
        "per_round_decode_tokens_per_sec": [r["decode_tokens_per_sec"] for r in rates],
        "measured_with": "pytest-benchmark" if benchmark is not None and not benchmark.disabled else "pytest-dfqs rounds",
    }


def _rounds(action: Callable[[], None], rounds: int, benchmark: Any) -> None:
    """pytest-benchmark drives the rounds when it measures; disabled (xdist, --benchmark-disable) it would run one."""
    if benchmark is not None and not benchmark.disabled:
        benchmark.pedantic(action, rounds=rounds, iterations=1, warmup_rounds=0)
    else:
        for _ in range(rounds):
            action()


def context_set_digest() -> str:
    return hashlib.sha256(json.dumps([FILLER, QUESTION, list(CODES)]).encode()).hexdigest()


def _conditions(model, budget: Budget, loaded, reasoning, code, lengths) -> dict[str, Any]:
    from .certificate import cpu_model

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


def record_problems(record: Any) -> list[str]:
    """Why a record is not a valid metrics record: schema errors, then non-finite values."""
    import jsonschema

    schema = json.loads(METRICS_SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    problems = [f"{'/'.join(map(str, error.absolute_path)) or '(record)'}: {error.message}" for error in validator.iter_errors(record)]
    if isinstance(record, dict):
        problems += [f"{name}: {value!r} is not finite" for name, value in _required_values(record) if not math.isfinite(value)]
    return problems


def _required_values(record: dict[str, Any]) -> list[tuple[str, float]]:
    values = []
    for name in REQUIRED:
        value = record.get(name)
        items = value if isinstance(value, list) else [value]
        values += [(name, float(v)) for v in items if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return values


def write_record(path: Path, record: dict[str, Any]) -> None:
    path.write_text(json.dumps(record, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def load_record(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def differing_conditions(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """Dotted names of the conditions that differ (the model's own digest excepted)."""
    mine, other = _flatten(ours), _flatten(theirs)
    return sorted(key for key in mine.keys() | other.keys() if mine.get(key) != other.get(key) and key not in NOT_COMPARED)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: value}


def side_by_side(ours: dict[str, Any], theirs: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name in REQUIRED:
        mine, other = ours[name], theirs[name]
        if isinstance(mine, list):
            mine, other = (mine[-1] if mine else 0.0), (other[-1] if other else 0.0)
            name = "context_stability_curve[-1]"
        rows.append({"metric": name, "model": mine, "baseline": other, "delta": mine - other})
    return rows


def check_metrics_record(model: ModelUnderTest) -> Finding:
    record = model.evaluation().record
    problems = record_problems(record)
    written = model.eval_options.metrics_path if not problems else None
    plot = None
    if written is not None:
        write_record(written, record)
        plot = plot_stability(record, written.with_name(f"{written.stem}-stability.png"))
    summary_values = {name: record[name] for name in REQUIRED if name != "context_stability_curve"}
    evidence = {"values": summary_values, "context_stability_curve": record["context_stability_curve"],
                "conditions": record["conditions"], "problems": problems, "written_to": str(written) if written else None,
                "plot": str(plot) if plot else None}
    if problems:
        return Finding("metrics-record", Status.NOT_MET, f"the metrics record is not valid: {problems[0]}", evidence)
    boundary_note = " (lower bound)" if record["details"]["context_stability"]["failure_boundary_is_lower_bound"] else ""
    return Finding(
        "metrics-record", Status.MET,
        f"reasoning {record['reasoning_score']:.3f}, code {record['code_score']:.3f},"
        f" curve {[round(v, 3) for v in record['context_stability_curve']]}, {record['cpu_tokens_per_sec']:.1f} tok/s,"
        f" failure boundary {record['failure_boundary_tokens']:,} tokens{boundary_note}",
        evidence,
    )


def check_identical_conditions(model: ModelUnderTest) -> Finding:
    record = model.evaluation().record
    baseline_path = model.eval_options.baseline
    if baseline_path is None:
        return Finding("identical-conditions", Status.MET,
                       "all five metrics were measured under the one recorded conditions block"
                       " (give --dfqs-baseline RECORD to compare with another model's record)",
                       {"conditions": record["conditions"]})
    baseline = load_record(baseline_path)
    problems = record_problems(baseline)
    if problems:
        return Finding("identical-conditions", Status.NOT_MET, f"the baseline {baseline_path} is not a valid metrics record: {problems[0]}")
    differing = differing_conditions(record["conditions"], baseline["conditions"])
    evidence = {"baseline": str(baseline_path), "differing": differing}
    if differing:
        return Finding("identical-conditions", Status.NOT_MET,
                       f"conditions differ from the baseline's in {len(differing)} field(s): {', '.join(differing)}", evidence)
    table = side_by_side(record, baseline)
    return Finding("identical-conditions", Status.MET,
                   f"conditions identical to the baseline {baseline['model']['file_name']}'s; deltas in the terminal table",
                   {**evidence, "side_by_side": table})
