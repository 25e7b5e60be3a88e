"""SARIF 2.1.0: the findings that are not met, for code scanning (GitHub's upload-sarif, any SARIF viewer).

One run, pytest-dfqs as its tool driver. Rules: one per clause check (ids as
in the test ids: `DFQS-3.4-llama-cpp-load`), one per claim kind
(`claim-file_size`) and one per safety check (`template-code`), each with the
spec's words and a level from its SHALL, SHOULD or MAY. Results: one per
finding that is NOT MET or ERROR, one per construct or stopped rendering of a
dangerous chat template; the model file (or its URL) is the artifact, with a
byte region where the finding knows its offset in the file (a header error, a
template's key) and the template line in the message and the properties.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_dfqs import __version__
from pytest_dfqs.catalogue import Catalogue
from pytest_dfqs.model import ModelUnderTest
from pytest_dfqs.safety.checks import SAFETY_CHECKS, TEMPLATE_CODE
from pytest_dfqs.safety.template_render import HARMLESS
from pytest_dfqs.session import CertificationSession, ModelResult
from pytest_dfqs.verdict import Finding, Status

from .certificate import to_json

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
LEVELS = {"SHALL": "error", "SHOULD": "warning", "MAY": "note"}
WEIGHT_LEVELS = {"fail": "error", "warn": "warning", "info": "note"}
REPORTED = (Status.NOT_MET, Status.ERROR)
SECURITY_SEVERITY = "9.0"  # GitHub's scale: a template that reaches for Python objects can run code at load


def build_sarif(state: CertificationSession, results: list[ModelResult]) -> dict[str, Any]:
    """The SARIF log of these results: the rules of every check, claim kind and safety check; a result per finding not met."""
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": _driver(state)},
                "artifacts": [_artifact(r.model) for r in results],
                "invocations": [{"executionSuccessful": not state.interrupted}],
                "results": [entry for index, r in enumerate(results) for entry in _results(state, r, index)],
                "properties": {"verdicts": {r.model.label: r.verdict.value for r in results}, "spec": state.catalogue.spec},
            }
        ],
    }


def _driver(state: CertificationSession) -> dict[str, Any]:
    facts = sorted({claim.fact for claims_file in state.claims_files for claim in claims_file.claims})
    claim_level = "error" if state.policy.claim_weight == "fail" else "note"
    return {
        "name": "pytest-dfqs",
        "version": __version__,
        "informationUri": f"https://doi.org/{state.catalogue.spec_doi}",
        "rules": _clause_rules(state.catalogue) + [_claim_rule(fact, claim_level) for fact in facts] + _safety_rules(),
    }


def _clause_rules(catalogue: Catalogue) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{clause.id}-{check_id}",
            "name": check_id,
            "shortDescription": {"text": f"{clause.id} ({clause.level}): {clause.text}"},
            "fullDescription": {"text": catalogue.checks[check_id].description},
            "defaultConfiguration": {"level": LEVELS[clause.level]},
            "properties": {"dfqs_clause": clause.id, "dfqs_level": clause.level, "profile": clause.profile, "tags": ["dfqs", "model"]},
        }
        for clause in catalogue.clauses
        for check_id in clause.checks
    ]


def _claim_rule(fact: str, level: str) -> dict[str, Any]:
    return {
        "id": f"claim-{fact}",
        "name": f"claim {fact}",
        "shortDescription": {"text": f"What a model card or release states about the file's {fact} is what the file holds"},
        "defaultConfiguration": {"level": level},
        "properties": {"tags": ["dfqs", "claims"]},
    }


def _safety_rules() -> list[dict[str, Any]]:
    return [
        {
            "id": check,
            "name": check,
            "shortDescription": {"text": text},
            "defaultConfiguration": {"level": "error"},
            "properties": {"tags": ["security", "chat-template"], "security-severity": SECURITY_SEVERITY},
        }
        for check, text in SAFETY_CHECKS.items()
    ]


def _artifact(model: ModelUnderTest) -> dict[str, Any]:
    artifact: dict[str, Any] = {"location": {"uri": artifact_uri(model)}, "length": model.path.stat().st_size}
    if model.sha256:
        artifact["hashes"] = {"sha-256": model.sha256}
    return artifact


def artifact_uri(model: ModelUnderTest) -> str:
    """The model's URL, its path relative to the working folder (where code scanning expects it), or a file URI."""
    if model.origin is not None:
        return model.origin.url
    path = model.path.resolve()
    try:
        return path.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_uri()


def _results(state: CertificationSession, result: ModelResult, index: int) -> list[dict[str, Any]]:
    found = [
        _result(f"{clause.clause.id}-{finding.check}", WEIGHT_LEVELS[clause.weight], finding, index, result.model, clause.clause.id)
        for clause in result.clauses
        for finding in clause.findings
        if finding.status in REPORTED
    ]
    claim_level = WEIGHT_LEVELS[state.policy.claim_weight]
    found += [
        _result(f"claim-{claim.case.claim.fact}", claim_level, claim.finding, index, result.model, f"claim {claim.case.key}")
        for claim in result.claims
        if claim.finding.status in REPORTED
    ]
    for safety in result.safety:
        if safety.finding.status == Status.NOT_MET:
            found += _dangerous(safety.finding, index, result.model)
        elif safety.finding.status == Status.ERROR:
            found.append(_result(safety.check, "warning", safety.finding, index, result.model, "safety"))
    return found


def _result(rule: str, level: str, finding: Finding, index: int, model: ModelUnderTest, what: str) -> dict[str, Any]:
    could_not = "the check could not run: " if finding.status == Status.ERROR else ""
    offset = finding.evidence.get("offset")
    return {
        "ruleId": rule,
        "level": level if finding.status == Status.NOT_MET else "warning",
        "message": {"text": f"{what} {finding.status.value} on {model.label}: {could_not}{finding.summary}"},
        "locations": [_location(index, model, offset if isinstance(offset, int) else None)],
        "properties": {"dfqs_status": finding.status.value, "model": model.label},
    }


def _dangerous(finding: Finding, index: int, model: ModelUnderTest) -> list[dict[str, Any]]:
    """One result per construct (template-code) or stopped rendering (template-renders) of each dangerous template."""
    entries = []
    for template in finding.evidence["templates"]:
        if finding.check == TEMPLATE_CODE:
            items = [
                (f"line {f['line']}: {f['construct']} ({f['family']})", {"template_line": f["line"], "family": f["family"]})
                for f in template["findings"]
            ]
        else:
            stopped = [r for r in template["renderings"] if r["outcome"] not in HARMLESS]
            items = [(f"{r['conversation']} conversation: {r['message']}", {"outcome": r["outcome"]}) for r in stopped]
        for text, properties in items:
            entries.append(
                {
                    "ruleId": finding.check,
                    "level": "error",
                    "message": {"text": f"{template['key']} of {model.label} is dangerous: {text}"},
                    "locations": [_location(index, model, template["offset"])],
                    "properties": properties | {"template_key": template["key"], "model": model.label},
                }
            )
    return entries


def _code_properties(found: dict[str, Any]) -> dict[str, Any]:
    return {"template_line": found["line"], "family": found["family"]}


def _location(index: int, model: ModelUnderTest, offset: int | None) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": {"uri": artifact_uri(model), "index": index}}
    if offset is not None:
        physical["region"] = {"byteOffset": offset}
    return {"physicalLocation": physical}


def write_sarif(path: Path, log: dict[str, Any]) -> None:
    path.write_text(to_json(log) + "\n", encoding="utf-8")
