"""Clause verdicts and the overall verdict under levels, tiers, strictness, profiles, selections and interrupts."""

from __future__ import annotations

import pytest

from pytest_dfqs.catalogue import Clause, load_catalogue, tier_rank
from pytest_dfqs.verdict import NEEDS_TIER, ClauseResult, Finding, Policy, Status, Verdict, decide_clause, overall_verdict

CATALOGUE = load_catalogue()
TIERS = {check_id: check.tier for check_id, check in CATALOGUE.checks.items()}
SINGLE_FILE = CATALOGUE.clause("DFQS-3.1")  # SHALL, static (7 static checks, then llama.cpp's load at runtime)
SINGLE_FILE_STATIC = len([check for check in SINGLE_FILE.checks if TIERS[check] == "static"])
ROUTING = CATALOGUE.clause("DFQS-3.3")  # SHALL, runtime (router-structure static, routing-determinism runtime)
COMPATIBILITY = CATALOGUE.clause("DFQS-3.4")  # SHOULD, runtime
GPU = CATALOGUE.clause("DFQS-3.6")  # MAY
PROFILE_MOE = CATALOGUE.clause("DFQS-5.1")  # SHALL, reference profile
STATIC = Policy()


def found(clause: Clause, *statuses: Status, policy: Policy = STATIC) -> list[Finding]:
    """A finding for every check of the clause, as the plugin records them: the given statuses first, then MET;
    checks of a tier the run did not reach say so."""
    findings = []
    for index, check in enumerate(clause.checks):
        if tier_rank(TIERS[check]) > tier_rank(policy.tier):
            findings.append(Finding(check, Status.NOT_EVALUATED, f"needs --dfqs-tier {TIERS[check]}", {NEEDS_TIER: TIERS[check]}))
        else:
            status = statuses[index] if index < len(statuses) else Status.MET
            findings.append(Finding(check, status, f"finding {index}: {status.value}"))
    return findings


def decide(clause: Clause, *statuses: Status, policy: Policy = STATIC, interrupted: bool = False) -> ClauseResult:
    return decide_clause(clause, found(clause, *statuses, policy=policy), policy, TIERS, interrupted)


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ((Status.MET, Status.MET), Status.MET),
        ((Status.MET, Status.NOT_MET), Status.NOT_MET),
        ((Status.ERROR, Status.MET), Status.ERROR),
        ((Status.NOT_MET, Status.ERROR), Status.NOT_MET),
        ((Status.NOT_APPLICABLE,) * SINGLE_FILE_STATIC, Status.NOT_APPLICABLE),
        ((Status.MET, Status.NOT_APPLICABLE), Status.MET),
        ((Status.MET, Status.NOT_EVALUATED), Status.NOT_EVALUATED),
    ],
)
def test_clause_status(statuses: tuple[Status, ...], expected: Status) -> None:
    assert decide(SINGLE_FILE, *statuses).status == expected


def test_a_runtime_clause_is_not_evaluated_by_static_evidence_alone() -> None:
    static = decide(ROUTING)
    assert static.status == Status.NOT_EVALUATED and static.undecided == "tier runtime not run"
    runtime = decide(ROUTING, policy=Policy(tier="runtime"))
    assert runtime.status == Status.MET and runtime.decided_at == "runtime" and runtime.undecided is None


def test_the_tier_that_decided_a_clause() -> None:
    assert decide(SINGLE_FILE).decided_at == "static"
    assert decide(SINGLE_FILE, policy=Policy(tier="runtime")).decided_at == "runtime"
    assert decide(SINGLE_FILE, Status.NOT_MET).decided_at == "static"


def test_reason_comes_from_the_deciding_finding() -> None:
    assert decide(SINGLE_FILE, Status.MET, Status.NOT_MET).reason == "finding 1: NOT MET"


def test_a_clause_with_checks_that_did_not_run_is_not_decided() -> None:
    """`-k gguf-header` runs one of DFQS-3.1's seven static checks: six MET findings short is not MET."""
    others = ("tensor-layout", "no-split", "tensors-in-file", "standalone", "loader-rules", "llama-cpp-loads")
    partial = decide_clause(SINGLE_FILE, found(SINGLE_FILE)[:1], Policy(), TIERS, deselected=frozenset(others))
    assert partial.status == Status.NOT_EVALUATED and partial.deselected == others
    assert partial.undecided == "deselected: tensor-layout, no-split, tensors-in-file, standalone, loader-rules, llama-cpp-loads"
    lost = decide_clause(SINGLE_FILE, found(SINGLE_FILE)[:1], Policy(), TIERS)  # selected, yet no finding came back
    assert lost.undecided == "not run: tensor-layout, no-split, tensors-in-file, standalone, loader-rules, llama-cpp-loads"
    stopped = decide_clause(SINGLE_FILE, [], Policy(), TIERS, interrupted=True)
    assert stopped.undecided.startswith("the run was interrupted before gguf-header, tensor-layout")  # type: ignore[union-attr]
    failed = decide_clause(SINGLE_FILE, found(SINGLE_FILE, Status.NOT_MET)[:1], Policy(), TIERS)
    assert failed.status == Status.NOT_MET  # one check that fails decides, whatever did not run


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
def test_weights(clause: Clause, policy: Policy, weight: str) -> None:
    assert policy.weight(clause) == weight


def every_clause(policy: Policy, **statuses: tuple[Status, ...]) -> list[ClauseResult]:
    """Every clause of the catalogue decided under `policy`, MET unless `statuses` (by clause id, dots as _) says otherwise."""
    return [decide(clause, *statuses.get(clause.id.replace("-", "_").replace(".", "_"), ()), policy=policy) for clause in CATALOGUE.clauses]


@pytest.mark.parametrize(
    ("clause_key", "policy", "verdict"),
    [
        ("DFQS_3_1", Policy(tier="eval"), Verdict.NOT_CONFORMANT),
        ("DFQS_3_4", Policy(tier="eval"), Verdict.CONFORMANT_WITH_WARNINGS),
        ("DFQS_3_4", Policy(tier="eval", strict=True), Verdict.NOT_CONFORMANT),
        ("DFQS_3_6", Policy(tier="eval"), Verdict.CONFORMANT),
        ("DFQS_5_1", Policy(tier="eval"), Verdict.CONFORMANT),
        ("DFQS_5_1", Policy(tier="eval", profile="reference"), Verdict.NOT_CONFORMANT),
    ],
)
def test_overall_verdict_of_one_clause_not_met(clause_key: str, policy: Policy, verdict: Verdict) -> None:
    results = every_clause(policy, **{clause_key: (Status.NOT_MET,)})
    assert overall_verdict(results) == verdict


def test_conformant_only_when_every_shall_clause_is_decided() -> None:
    assert overall_verdict(every_clause(Policy(tier="eval"))) == Verdict.CONFORMANT
    static = every_clause(Policy())  # the runtime and eval SHALL clauses are undecided at the default tier
    assert overall_verdict(static) == Verdict.INCOMPLETE
    undecided = {r.clause.id: r.undecided for r in static if r.weight == "fail" and r.undecided}
    assert undecided == {
        "DFQS-3.2": "tier runtime not run",
        "DFQS-3.3": "tier runtime not run",
        "DFQS-11.1": "tier eval not run",
        "DFQS-11.2": "tier eval not run",
    }
    assert overall_verdict(every_clause(Policy(), DFQS_3_1=(Status.NOT_MET,))) == Verdict.NOT_CONFORMANT  # a defect still fails


def test_interrupted_errored_and_skipped_runs_are_incomplete() -> None:
    policy = Policy(tier="eval")
    assert overall_verdict(every_clause(policy), interrupted=True) == Verdict.INCOMPLETE
    errored = every_clause(policy, DFQS_3_2=(Status.MET, Status.ERROR))
    assert overall_verdict(errored) == Verdict.INCOMPLETE
    assert next(r for r in errored if r.clause.id == "DFQS-3.2").undecided == "ERROR: finding 1: ERROR"
    skipped = every_clause(policy, DFQS_3_3=(Status.MET, Status.NOT_EVALUATED))  # e.g. the memory preflight said no
    assert overall_verdict(skipped) == Verdict.INCOMPLETE
    assert next(r for r in skipped if r.clause.id == "DFQS-3.3").undecided == "finding 1: NOT EVALUATED"
