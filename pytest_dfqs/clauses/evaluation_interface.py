"""Section 11: the evaluation interface.

DFQS-11.1 (SHALL report the five metrics) is MET when the model's metrics
record validates against its schema and every value is finite; the record
and its stability plot are written where --dfqs-metrics says. DFQS-11.2
(MUST, identical conditions) compares the record's conditions with a
baseline record's when one is given.
"""

from __future__ import annotations

from typing import Any

from pytest_dfqs.evaluation.context_stability import plot_stability
from pytest_dfqs.evaluation.orchestrator import evaluation
from pytest_dfqs.evaluation.record import REQUIRED, differing_conditions, load_record, record_problems, side_by_side, write_record
from pytest_dfqs.model import ModelUnderTest
from pytest_dfqs.verdict import Finding, Status


def check_metrics_record(model: ModelUnderTest) -> Finding:
    record = evaluation(model)
    problems = record_problems(record)
    written = model.eval_options.metrics_path if not problems else None
    plot = None
    if written is not None:
        write_record(written, record)
        plot = plot_stability(record, written.with_name(f"{written.stem}-stability.png"))
    summary_values = {name: record[name] for name in REQUIRED if name != "context_stability_curve"}
    evidence = {
        "values": summary_values,
        "context_stability_curve": record["context_stability_curve"],
        "reasoning_per_kind": record["details"]["reasoning"]["per_kind"],
        "replies": _replies(record["details"]),
        "conditions": record["conditions"],
        "problems": problems,
        "written_to": str(written) if written else None,
        "plot": str(plot) if plot else None,
    }
    if problems:
        return Finding("metrics-record", Status.NOT_MET, f"the metrics record is not valid: {problems[0]}", evidence)
    boundary_note = " (lower bound)" if record["details"]["context_stability"]["failure_boundary_is_lower_bound"] else ""
    return Finding(
        "metrics-record",
        Status.MET,
        f"reasoning {record['reasoning_score']:.3f}, code {record['code_score']:.3f},"
        f" curve {[round(v, 3) for v in record['context_stability_curve']]}, {record['cpu_tokens_per_sec']:.1f} tok/s,"
        f" failure boundary {record['failure_boundary_tokens']:,} tokens{boundary_note}",
        evidence,
    )


def _replies(details: dict[str, Any]) -> dict[str, Any]:
    """How the model was asked and how its replies kept the asked format (the terminal shows it under the reasoning table)."""
    reasoning, code = details["reasoning"], details["code"]
    kept = ("items", "format_failures", "format_failure_rate", "format_failure_reasons", "off_type_answers", "budget_hits")
    return {
        "mode": reasoning["mode"],
        "reasoning": {key: reasoning[key] for key in kept},
        "code": {"problems": code["problems"], "format_failures": code["format_failures"], "budget_hits": code["budget_hits"]},
    }


def check_identical_conditions(model: ModelUnderTest) -> Finding:
    record = evaluation(model)
    baseline_path = model.eval_options.baseline
    if baseline_path is None:
        return Finding(
            "identical-conditions",
            Status.MET,
            "all five metrics were measured under the one recorded conditions block"
            " (give --dfqs-baseline RECORD to compare with another model's record)",
            {"conditions": record["conditions"]},
        )
    baseline = load_record(baseline_path)
    problems = record_problems(baseline)
    if problems:
        return Finding("identical-conditions", Status.NOT_MET, f"the baseline {baseline_path} is not a valid metrics record: {problems[0]}")
    differing = differing_conditions(record["conditions"], baseline["conditions"])
    evidence = {"baseline": str(baseline_path), "differing": differing}
    if differing:
        return Finding(
            "identical-conditions",
            Status.NOT_MET,
            f"{_other_prompt_sets(record['conditions'], baseline['conditions'])}conditions differ from the baseline's"
            f" in {len(differing)} field(s): {', '.join(differing)}",
            evidence,
        )
    table = side_by_side(record, baseline)
    return Finding(
        "identical-conditions",
        Status.MET,
        f"conditions identical to the baseline {baseline['model']['file_name']}'s; deltas in the terminal table",
        {**evidence, "side_by_side": table},
    )


def _other_prompt_sets(ours: dict[str, Any], theirs: dict[str, Any]) -> str:
    """The prompt sets that are not the same set at all (another version), named first: no other difference matters more."""
    named = []
    for name, mine in ours["prompt_sets"].items():
        other = theirs["prompt_sets"].get(name, {})
        if mine.get("id") != other.get("id"):
            named.append(f"the {name} prompt set is {mine.get('id')}, the baseline's {other.get('id', 'absent')}")
    return "; ".join(named) + "; " if named else ""
