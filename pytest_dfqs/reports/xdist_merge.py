"""pytest-xdist: each worker's findings and model accounts reach the controller's one certificate.

A worker exports, at the end of its session, every finding it recorded and
what it did with each model (workers started, loads, the digest); the
controller merges each export as its worker goes down and writes the outputs
once, from all of them.
"""

from __future__ import annotations

import json

from pytest_dfqs.session import CertificationSession
from pytest_dfqs.verdict import Finding, Status

from .certificate import to_json


def export(state: CertificationSession) -> str:
    """This process's findings and model accounts, as JSON for the xdist controller."""
    findings = [
        {"model": index, "clause": clause_id, "check": f.check, "status": f.status.value, "summary": f.summary, "evidence": f.evidence}
        for index, clause_id, f in state.recorded()
    ]
    return to_json({"findings": findings, "models": [model.worker_view() for model in state.models]})


def merge(state: CertificationSession, exported: str) -> None:
    """Take in what an xdist worker exported."""
    document = json.loads(exported)
    for item in document["findings"]:
        state.add(item["model"], item["clause"], Finding(item["check"], Status(item["status"]), item["summary"], item["evidence"]))
    for model, view in zip(state.models, document["models"]):
        model.absorb(view)
