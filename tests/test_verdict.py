"""Clause verdicts and the overall verdict under levels, tiers, strictness and profiles."""

from __future__ import annotations

import pytest

from pytest_dfqs.catalogue import load_catalogue
from pytest_dfqs.verdict import Finding, Policy, Status, Verdict, decide_clause, overall_verdict

CATALOGUE = load_catalogue()
SINGLE_FILE = CATALOGUE.clause("DFQS-3.1")  # SHALL, static
ROUTING = CATALOGUE.clause("DFQS-3.3")  # SHALL, runtime
COMPATIBILITY = CATALOGUE.clause("DFQS-3.4")  # SHOULD, runtime
GPU = CATALOGUE.clause("DFQS-3.6")  # MAY
PROFILE_MOE = CATALOGUE.clause("DFQS-5.1")  # SHALL, reference profile


def found(*statuses: Status) -> list[Finding]:
    return [Finding(f"check-{i}", status, f"finding {i}: {status.value}") for i, status in enumerate(statuses)]


@pytest.mark.parametrize(
    ("statuses", "tier", "expected"),
    [
        ((Status.MET, Status.MET), "static", Status.MET),
        ((Status.MET, Status.NOT_MET), "static", Status.NOT_MET),
        ((Status.ERROR, Status.MET), "static", Status.ERROR),
        ((Status.NOT_MET, Status.ERROR), "static", Status.NOT_MET),
        ((), "static", Status.NOT_EVALUATED),
        ((Status.MET, Status.NOT_EVALUATED), "runtime", Status.NOT_EVALUATED),
        ((Status.NOT_APPLICABLE, Status.NOT_EVALUATED), "static", Status.NOT_APPLICABLE),
        ((Status.MET, Status.NOT_APPLICABLE), "static", Status.MET),
    ],
)
def test_clause_status(statuses: tuple[Status, ...], tier: str, expected: Status) -> None:
    assert decide_clause(SINGLE_FILE, found(*statuses), Policy(tier=tier)).status == expected


def test_a_runtime_clause_is_not_evaluated_by_static_evidence_alone() -> None:
    assert decide_clause(ROUTING, found(Status.MET), Policy(tier="static")).status == Status.NOT_EVALUATED
    assert decide_clause(ROUTING, found(Status.MET, Status.MET), Policy(tier="runtime")).status == Status.MET


def test_reason_comes_from_the_deciding_finding() -> None:
    result = decide_clause(SINGLE_FILE, found(Status.MET, Status.NOT_MET), Policy())
    assert result.reason == "finding 1: NOT MET"


@pytest.mark.parametrize(
    ("clause", "policy", "weight"),
    [
        (SINGLE_FILE, Policy(), "fail"),
        (COMPATIBILITY, Policy(), "warn"),
        (COMPATIBILITY, Policy(strict=True), "fail"),
        (GPU, Policy(strict=True), "info"),
        (PROFILE_MOE, Policy(), "info"),
        (PROFILE_MOE, Policy(profile="reference"), "fail"),
    ],
)
def test_weights(clause, policy: Policy, weight: str) -> None:
    assert policy.weight(clause) == weight


@pytest.mark.parametrize(
    ("clause", "policy", "verdict"),
    [
        (SINGLE_FILE, Policy(), Verdict.NOT_CONFORMANT),
        (COMPATIBILITY, Policy(tier="runtime"), Verdict.CONFORMANT_WITH_WARNINGS),
        (COMPATIBILITY, Policy(tier="runtime", strict=True), Verdict.NOT_CONFORMANT),
        (GPU, Policy(tier="runtime"), Verdict.CONFORMANT),
        (PROFILE_MOE, Policy(), Verdict.CONFORMANT),
        (PROFILE_MOE, Policy(profile="reference"), Verdict.NOT_CONFORMANT),
    ],
)
def test_overall_verdict_of_one_clause_not_met(clause, policy: Policy, verdict: Verdict) -> None:
    failing = decide_clause(clause, found(Status.NOT_MET), policy)
    passing = decide_clause(SINGLE_FILE, found(Status.MET), policy) if clause is not SINGLE_FILE else failing
    assert overall_verdict([passing, failing]) == verdict


def test_a_shall_clause_that_could_not_run_at_the_requested_tier_is_not_conformant() -> None:
    skipped = decide_clause(ROUTING, found(Status.MET, Status.NOT_EVALUATED), Policy(tier="runtime"))
    assert skipped.status == Status.NOT_EVALUATED and skipped.unverified
    assert overall_verdict([skipped]) == Verdict.NOT_CONFORMANT
    higher_tier = decide_clause(ROUTING, found(Status.MET, Status.NOT_EVALUATED), Policy(tier="static"))
    assert not higher_tier.unverified and overall_verdict([higher_tier]) == Verdict.CONFORMANT
    deselected = decide_clause(ROUTING, [], Policy(tier="runtime"))
    assert not deselected.unverified and overall_verdict([deselected]) == Verdict.CONFORMANT
