"""pytest-xdist: each worker's findings reach the controller's one certificate as they are made.

Every conformance test report a worker sends carries, in its `dfqs` attribute,
the finding it recorded and the worker's account of the model (workers
started, loads, the digest). The controller records each as the report
arrives, so an interrupted run still certifies, as interrupted, every finding
that reached it; the controller writes the outputs once, from all of them.
"""

from __future__ import annotations

import json

from pytest_dfqs.session import Case, CertificationSession, ClaimCase, SafetyCase
from pytest_dfqs.verdict import Finding

from .certificate import to_json

REPORT_ATTRIBUTE = "dfqs"


def export(state: CertificationSession, case: Case | ClaimCase | SafetyCase, finding: Finding) -> str:
    """One finding (of a clause's check, a claim or a safety check) and the model's account, as JSON for the xdist controller."""
    where = _where(case)
    document = {"model": case.model_index, **where, "finding": finding.as_dict(), "account": state.models[case.model_index].worker_view()}
    return to_json(document)


def _where(case: Case | ClaimCase | SafetyCase) -> dict[str, str]:
    if isinstance(case, SafetyCase):
        return {"safety": case.check}
    return {"claim": case.key} if isinstance(case, ClaimCase) else {"clause": case.clause.id}


def merge(state: CertificationSession, worker: str, exported: str) -> None:
    """Take in one finding an xdist worker exported, and its latest account of the model."""
    document = json.loads(exported)
    finding = Finding.from_dict(document["finding"])
    if "safety" in document:
        state.add_safety(document["model"], document["safety"], finding)
    elif "claim" in document:
        state.add_claim(document["model"], document["claim"], finding)
    else:
        state.add(document["model"], document["clause"], finding)
    state.models[document["model"]].absorb(worker, document["account"])
