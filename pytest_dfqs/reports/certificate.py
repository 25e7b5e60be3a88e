"""The certificate: a machine-readable record of one certification run.

Its envelope follows pytest-benchmark's JSON (machine_info, datetime, version,
results); schemas/dfqs-certificate-2.schema.json describes it.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from pytest_dfqs import __version__
from pytest_dfqs.model import ModelUnderTest
from pytest_dfqs.modelfile.header import HeaderError
from pytest_dfqs.runtime.host import cpu_model, physical_memory
from pytest_dfqs.session import CertificationSession, ClaimResult, ModelResult, overall
from pytest_dfqs.verdict import ClauseResult, Policy

CERTIFICATE_FORMAT = "dfqs-certificate"
CERTIFICATE_VERSION = 2
TOOL_PACKAGES = ("pytest", "gguf", "llama-cpp-python", "jsonschema", "allure-pytest", "pytest-benchmark")


def tool_versions() -> dict[str, str | None]:
    """Installed versions, read from package metadata (importing llama_cpp would be slow)."""
    versions: dict[str, str | None] = {"pytest-dfqs": __version__, "python": platform.python_version()}
    for package in TOOL_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def machine_info() -> dict[str, Any]:
    return {
        "node": platform.node(),
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": physical_memory(),
        "python_implementation": platform.python_implementation(),
        "python_executable": sys.executable,
    }


def build_certificate(state: CertificationSession, results: list[ModelResult]) -> dict[str, Any]:
    """The certificate of these results of the session: what was decided, whether the run was interrupted, the selection."""
    catalogue, policy = state.catalogue, state.policy
    return {
        "format": CERTIFICATE_FORMAT,
        "format_version": CERTIFICATE_VERSION,
        "datetime": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "spec": {"name": catalogue.spec, "title": catalogue.spec_title, "doi": catalogue.spec_doi, "catalogue_version": catalogue.version},
        "tool": tool_versions(),
        "machine_info": machine_info(),
        "settings": {
            "tier": policy.tier,
            "strict": policy.strict,
            "profile": policy.profile,
            "claims_files": [{"name": f.name, "path": str(f.path), "title": f.title} for f in state.claims_files],
            "safety": state.safety_policy,
        },
        "verdict": overall(results).value,
        "complete": all(r.complete for r in results),
        "interrupted": state.interrupted,
        "selection": {**state.selection, "deselected_tests": len(state.deselected)},
        "models": [_model_entry(r, policy, state.safety_policy) for r in results],
    }


def _model_entry(result: ModelResult, policy: Policy, safety: str) -> dict[str, Any]:
    model = result.model
    try:
        facts: dict[str, Any] | None = model.facts().as_dict()
    except HeaderError:
        facts = None
    return {
        "label": model.label,
        "path": model.origin.url if model.origin else str(model.path.resolve()),
        "file_name": model.path.name,
        "file_size": model.path.stat().st_size,
        "sha256": model.sha256,
        "facts": facts,
        "verdict": result.verdict.value,
        "complete": result.complete,
        "undecided": [{"clause": r.clause.id, "reason": r.undecided} for r in result.undecided]
        + [{"claim": r.case.key, "reason": r.finding.summary} for r in result.undecided_claims],
        "tier": policy.tier,
        "runtime": _runtime_entry(model),
        "memory_plan": next((f.evidence["memory_plan"] for c in result.clauses for f in c.findings if "memory_plan" in f.evidence), None),
        "remote": model.origin.record() if model.origin else None,
        "journal": {
            "checks": model.check_journal.summary() if model.check_journal is not None else None,
            "eval": (model.metrics_record or {}).get("details", {}).get("journal"),
        },
        "clauses": [_clause_entry(c) for c in result.clauses],
        "claims": [_claim_entry(c) for c in result.claims],
        "safety": {
            "dangerous": bool(result.dangerous),
            "policy": safety,
            "checks": [{"id": r.check, **{k: v for k, v in r.finding.as_dict().items() if k != "check"}} for r in result.safety],
        },
    }


def _runtime_entry(model: ModelUnderTest) -> dict[str, Any] | None:
    """The threads and context the runtime tier uses (or would use), and how many loads it made."""
    try:
        return model.runtime_record()
    except HeaderError:
        return None


def _clause_entry(result: ClauseResult) -> dict[str, Any]:
    clause = result.clause
    return {
        "id": clause.id,
        "section": clause.section,
        "level": clause.level,
        "profile": clause.profile,
        "text": clause.text,
        "tier": clause.tier,
        "status": result.status.value,
        "weight": result.weight,
        "reason": result.reason,
        "decided_at_tier": result.decided_at,
        "undecided": result.undecided,
        "findings": [f.as_dict() for f in result.findings],
    }


def _claim_entry(result: ClaimResult) -> dict[str, Any]:
    claims_file, claim, finding = result.case.claims_file, result.case.claim, result.finding
    return {
        "claims_file": claims_file.name,
        "id": claim.id,
        "fact": claim.fact,
        "claimed": claim.claimed,
        "source": claims_file.source_text(claim),
        "where": claim.where,
        "note": claim.note,
        "status": finding.status.value,
        "weight": result.weight,
        "summary": finding.summary,
        "evidence": finding.evidence,
    }


def to_json(document: Any) -> str:
    """Strict JSON of a certificate or evidence; values JSON cannot hold (raw metadata, NaN, infinities) become their text."""
    return json.dumps(_finite(document), indent=2, default=str, allow_nan=False)


def _finite(value: Any) -> Any:
    """The document with every non-finite float (a hostile header's NaN, an open interval's end) as its text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def write_certificate(path: Path, certificate: dict[str, Any]) -> None:
    path.write_text(to_json(certificate) + "\n", encoding="utf-8")
