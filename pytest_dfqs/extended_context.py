"""DFQS-3.7: context beyond 64K. The header states what the model declares."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .verdict import Finding, Status

if TYPE_CHECKING:
    from .model import ModelUnderTest

EXTENDED_CONTEXT = 65_536


def check_declared_context(model: ModelUnderTest) -> Finding:
    facts = model.facts()
    declared = facts.context_length
    evidence = {"context_length": declared, "threshold": EXTENDED_CONTEXT}
    if declared is None:
        return Finding("declared-context", Status.NOT_MET, f"the header declares no {facts.architecture}.context_length", evidence)
    beyond = declared > EXTENDED_CONTEXT
    return Finding(
        "declared-context", Status.MET if beyond else Status.NOT_MET,
        f"declares a context of {declared:,} tokens ({'beyond' if beyond else 'not beyond'} {EXTENDED_CONTEXT:,})", evidence,
    )
