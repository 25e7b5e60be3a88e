"""Findings, clause verdicts and the overall verdict of a model.

A check yields a `Finding`; the findings of a clause's checks decide the
clause (`ClauseResult`); the clause results and their levels decide the
model's verdict. The rules are DESIGN.md's: a SHALL clause not met fails the
run, SHOULD is a warning unless strict, MAY is informational, and profile
clauses count only when their profile was asked for. A verdict never says more
than was checked: CONFORMANT needs every deciding clause decided (MET or NOT
APPLICABLE) by all of its checks in a run that was not interrupted; anything
less is INCOMPLETE, naming each undecided clause and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .catalogue import Clause, tier_rank

NEEDS_TIER = "needs_tier"  # evidence key of a finding whose check belongs to a tier this run did not reach
SEE = "see"  # evidence key of a finding that gives another check's finding as its reason ("DFQS-3.1 gguf-header")
JUDGE = "judge"  # evidence key of the finding that says who decided a clause before its real test (DFQS-3.1: llama.cpp, or the rules)


class Status(str, Enum):
    MET = "MET"
    NOT_MET = "NOT MET"
    NOT_APPLICABLE = "NOT APPLICABLE"
    ERROR = "ERROR"
    NOT_EVALUATED = "NOT EVALUATED"


class Verdict(str, Enum):  # in order of severity
    CONFORMANT = "CONFORMANT"
    CONFORMANT_WITH_WARNINGS = "CONFORMANT WITH WARNINGS"
    INCOMPLETE = "INCOMPLETE"
    NOT_CONFORMANT = "NOT CONFORMANT"


CONCLUSIVE = (Status.MET, Status.NOT_APPLICABLE, Status.NOT_MET)  # what settles a clause, one way or the other


@dataclass(frozen=True)
class Finding:
    """What one check found on one model."""

    check: str
    status: Status
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The finding as the certificate, the journals and xdist's reports carry it."""
        return {"check": self.check, "status": self.status.value, "summary": self.summary, "evidence": self.evidence}

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> Finding:
        return cls(entry["check"], Status(entry["status"]), entry["summary"], entry["evidence"])


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

    @property
    def claim_weight(self) -> str:
        """What a claim not met does: nothing to the verdict unless strict ('info'), else it fails ('fail')."""
        return "fail" if self.strict else "info"


@dataclass(frozen=True)
class ClauseResult:
    clause: Clause
    status: Status
    weight: str
    findings: tuple[Finding, ...]
    tier_ran: bool = True  # the run's tier includes the clause's tier
    deselected: tuple[str, ...] = ()  # checks of the tiers that ran that the test selection (-k, -m) left out
    unreached: tuple[str, ...] = ()  # checks of the tiers that ran that were selected but never ran
    interrupted: bool = False
    decided_at: str | None = None  # the highest tier among the checks that decided the clause

    @property
    def awaiting(self) -> tuple[str, ...]:
        """Tiers whose checks would confirm a clause its own tier decided (DFQS-3.1: llama.cpp's load)."""
        if not self.tier_ran:
            return ()
        return tuple(dict.fromkeys(f.evidence[NEEDS_TIER] for f in self.findings if NEEDS_TIER in f.evidence))

    @property
    def undecided(self) -> str | None:
        """Why the clause is neither MET nor NOT APPLICABLE nor NOT MET; None when it is decided."""
        if self.status in CONCLUSIVE:
            return None
        if self.status == Status.ERROR:
            return f"ERROR: {self.reason}"
        if not self.tier_ran:
            return f"tier {self.clause.tier} not run"
        return self.reason

    @property
    def reason(self) -> str:
        """The sentence that explains the status, from the deciding finding.

        A failure is explained by the first failing check; any other status by
        the last check that has it, the one of the highest tier.
        """
        if (self.deselected or self.unreached) and self.status == Status.NOT_EVALUATED:
            return self._not_run()
        deciding = [f for f in self.findings if f.status == self.status] or list(self.findings)
        if not deciding:
            return ""
        if self.status == Status.MET and self.awaiting:
            checks = len([f for f in self.findings if f.status == Status.MET])
            judge = next((f.evidence[JUDGE] for f in self.findings if JUDGE in f.evidence), None)
            if judge is None:
                return f"decided from the header ({checks} checks); llama.cpp's load confirms it at --dfqs-tier {self.awaiting[0]}"
            return f"{judge} ({checks} checks); its full load at --dfqs-tier {self.awaiting[0]}"
        return deciding[0].summary if self.status in (Status.NOT_MET, Status.ERROR) else deciding[-1].summary

    def _not_run(self) -> str:
        parts = [f"deselected: {', '.join(self.deselected)}"] if self.deselected else []
        if self.unreached:
            parts.append(f"{'the run was interrupted before' if self.interrupted else 'not run:'} {', '.join(self.unreached)}")
        return "; ".join(parts)


def decide_clause(
    clause: Clause,
    findings: list[Finding],
    policy: Policy,
    check_tiers: dict[str, str],
    interrupted: bool = False,
    deselected: frozenset[str] = frozenset(),
) -> ClauseResult:
    """Combine the findings of a clause's checks into its status.

    `check_tiers` gives each check's tier; `deselected` names the clause's checks the selection left out.
    """
    tier_ran = tier_rank(clause.tier) <= tier_rank(policy.tier)
    found = {finding.check for finding in findings}
    ran = [check for check in clause.checks if tier_rank(check_tiers[check]) <= tier_rank(policy.tier)]
    missing = [check for check in ran if check not in found]
    status = _clause_status(clause, findings, policy, bool(missing))
    deciding = [check_tiers[f.check] for f in findings if f.status == status and status in CONCLUSIVE and f.check in check_tiers]
    decided_at = max(deciding, key=tier_rank) if deciding else None
    return ClauseResult(
        clause,
        status,
        policy.weight(clause),
        tuple(findings),
        tier_ran,
        tuple(check for check in missing if check in deselected),
        tuple(check for check in missing if check not in deselected),
        interrupted,
        decided_at,
    )


def _clause_status(clause: Clause, findings: list[Finding], policy: Policy, incomplete: bool) -> Status:
    if tier_rank(clause.tier) <= tier_rank(policy.tier):  # the clause's own tier ran: higher-tier checks only confirm
        findings = [finding for finding in findings if NEEDS_TIER not in finding.evidence] or findings
    statuses = {finding.status for finding in findings}
    if Status.NOT_MET in statuses:
        return Status.NOT_MET
    if Status.ERROR in statuses:
        return Status.ERROR
    if incomplete:  # a check that did not run could still find the clause not met
        return Status.NOT_EVALUATED
    if Status.NOT_APPLICABLE in statuses and Status.MET not in statuses:
        return Status.NOT_APPLICABLE  # e.g. routing of a dense model: no later tier changes that
    if Status.NOT_EVALUATED in statuses or not findings or tier_rank(clause.tier) > tier_rank(policy.tier):
        return Status.NOT_EVALUATED
    return Status.MET


def overall_verdict(results: list[ClauseResult], interrupted: bool = False, claims: Sequence[Status] = ()) -> Verdict:
    """NOT CONFORMANT when a deciding clause is not met; INCOMPLETE when one is undecided or the run was interrupted.

    A gate must not pass on checks that did not run: a deciding clause of a tier
    not run, deselected, interrupted, kept from running by the memory preflight or
    ended by an ERROR leaves the verdict INCOMPLETE, never CONFORMANT. `claims` are
    the statuses of the claims that decide too (under --dfqs-strict), by the same rule.
    """
    deciding = [r for r in results if r.weight == "fail"]
    if any(r.status == Status.NOT_MET for r in deciding) or Status.NOT_MET in claims:
        return Verdict.NOT_CONFORMANT
    if interrupted or any(r.undecided for r in deciding) or any(status not in CONCLUSIVE for status in claims):
        return Verdict.INCOMPLETE
    if any(r.weight == "warn" and r.status in (Status.NOT_MET, Status.ERROR) for r in results):
        return Verdict.CONFORMANT_WITH_WARNINGS
    return Verdict.CONFORMANT
