"""The metrics record: what --dfqs-metrics writes, its schema, and the baseline comparison.

schemas/dfqs-metrics-2.schema.json describes the record. A record is valid
when it validates and every required value is finite. Two records are
comparable (DFQS-11.2) when their conditions are identical, the model's own
digest excepted.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pytest_dfqs.catalogue import SCHEMAS_DIR

METRICS_FORMAT = "dfqs-metrics"
METRICS_VERSION = 2
METRICS_SCHEMA = SCHEMAS_DIR / "dfqs-metrics-2.schema.json"
REQUIRED = ("reasoning_score", "code_score", "context_stability_curve", "cpu_tokens_per_sec", "failure_boundary_tokens")
NOT_COMPARED = ("model_sha256",)  # what differs between the models being compared, by design


def record_problems(record: Any) -> list[str]:
    """Why a record is not a valid metrics record: schema errors, then non-finite values."""
    import jsonschema  # only the eval tier validates records: the static tier does not pay for the import

    schema = json.loads(METRICS_SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    problems = [f"{'/'.join(map(str, error.absolute_path)) or '(record)'}: {error.message}" for error in validator.iter_errors(record)]
    if isinstance(record, dict):
        problems += [f"{name}: {value!r} is not finite" for name, value in _required_values(record) if not math.isfinite(value)]
        if record.get("interrupted") is True:
            problems.append("the evaluation was interrupted: the record holds the items measured so far, not the five metrics")
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


def load_record(path: Path) -> Any:
    """The JSON in a record file; `record_problems` says whether it is a record."""
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
