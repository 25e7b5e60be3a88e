"""Findings, clause verdicts and the overall verdict of a model.

A check yields a `Finding`; the findings of a clause's checks decide the
clause (`ClauseResult`); the clause results and their levels decide the
model's verdict. The rules are DESIGN.md's: a SHALL clause not met fails the
run, SHOULD is a warning unless strict, MAY is informational, and profile
clauses count only when their profile was asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .catalogue import Clause, tier_rank

NEEDS_TIER = "needs_tier"  # evidence key of a finding whose check belongs to a tier this run did not reach


class Status(str, Enum):
    MET = "MET"
    NOT_MET = "NOT MET"
    NOT_APPLICABLE = "NOT APPLICABLE"
    ERROR = "ERROR"
    NOT_EVALUATED = "NOT EVALUATED"


class Verdict(str, Enum):
    CONFORMANT = "CONFORMANT"
    CONFORMANT_WITH_WARNINGS = "CONFORMANT WITH WARNINGS"
    NOT_CONFORMANT = "NOT CONFORMANT"


@dataclass(frozen=True)
class Finding:
    """What one check found on one model."""

    check: str
    status: Status
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Policy:
    """How clause levels weigh in this run."""

    tier: str = "static"
    strict: bool = False
    profile: str | None = None

    def weight(self, clause: Clause) -> str:
        """'fail', 'warn' or 'info': what a clause not met does to the verdict."""
        if clause.profile is not None and clause.profile != self.profile:
            return "info"
        if clause.level == "SHALL" or (clause.level == "SHOULD" and self.strict):
            return "fail"
        return "warn" if clause.level == "SHOULD" else "info"


@dataclass(frozen=True)
class ClauseResult:
    clause: Clause
    status: Status
    weight: str
    findings: tuple[Finding, ...]
    tier_ran: bool = True  # the run's tier includes the clause's tier

    @property
    def awaiting(self) -> tuple[str, ...]:
        """Tiers whose checks would confirm a clause its own tier decided (DFQS-3.1: llama.cpp's load)."""
        if not self.tier_ran:
            return ()
        return tuple(dict.fromkeys(f.evidence[NEEDS_TIER] for f in self.findings if NEEDS_TIER in f.evidence))

    @property
    def unverified(self) -> bool:
        """A clause whose tier ran but whose checks could not run (no memory, no llama.cpp)."""
        return self.status == Status.NOT_EVALUATED and self.tier_ran and bool(self.findings)

    @property
    def reason(self) -> str:
        """The sentence that explains the status, from the deciding finding.

        A failure is explained by the first failing check; any other status by
        the last check that has it, the one of the highest tier.
        """
        deciding = [f for f in self.findings if f.status == self.status] or list(self.findings)
        if not deciding:
            return ""
        if self.status == Status.MET and self.awaiting:
            checks = len([f for f in self.findings if f.status == Status.MET])
            return f"decided from the header ({checks} checks); llama.cpp's load confirms it at --dfqs-tier {self.awaiting[0]}"
        return deciding[0].summary if self.status in (Status.NOT_MET, Status.ERROR) else deciding[-1].summary


def decide_clause(clause: Clause, findings: list[Finding], policy: Policy) -> ClauseResult:
    """Combine the findings of a clause's checks into its status."""
    tier_ran = tier_rank(clause.tier) <= tier_rank(policy.tier)
    return ClauseResult(clause, _clause_status(clause, findings, policy), policy.weight(clause), tuple(findings), tier_ran)


def _clause_status(clause: Clause, findings: list[Finding], policy: Policy) -> Status:
    if tier_rank(clause.tier) <= tier_rank(policy.tier):  # the clause's own tier ran: higher-tier checks only confirm
        findings = [finding for finding in findings if NEEDS_TIER not in finding.evidence] or findings
    statuses = {finding.status for finding in findings}
    if Status.NOT_MET in statuses:
        return Status.NOT_MET
    if Status.ERROR in statuses:
        return Status.ERROR
    if Status.NOT_APPLICABLE in statuses and Status.MET not in statuses:
        return Status.NOT_APPLICABLE  # e.g. routing of a dense model: no later tier changes that
    if Status.NOT_EVALUATED in statuses or not findings or tier_rank(clause.tier) > tier_rank(policy.tier):
        return Status.NOT_EVALUATED
    return Status.MET


def overall_verdict(results: list[ClauseResult]) -> Verdict:
    """NOT CONFORMANT when a deciding clause failed, errored, or could not be checked at the tier asked for.

    A gate must not pass on checks that did not run: a SHALL clause of the
    requested tier left NOT EVALUATED (the preflight found too little memory,
    llama.cpp is missing) makes the run NOT CONFORMANT. Clauses of higher
    tiers, and clauses whose tests were deselected, do not.
    """
    if any(r.weight == "fail" and (r.status in (Status.NOT_MET, Status.ERROR) or r.unverified) for r in results):
        return Verdict.NOT_CONFORMANT
    if any(r.weight == "warn" and r.status in (Status.NOT_MET, Status.ERROR) for r in results):
        return Verdict.CONFORMANT_WITH_WARNINGS
    return Verdict.CONFORMANT
