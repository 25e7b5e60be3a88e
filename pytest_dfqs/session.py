"""What one pytest session certifies: its models, the policy, the findings.

The plugin keeps one `CertificationSession` in the config's stash; tests
record findings into it and the terminal summary and the certificate read the
clause results back.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .catalogue import Catalogue, Check, Clause
from .claims.claims_file import Claim, ClaimsFile
from .model import ModelUnderTest
from .safety.checks import SAFETY_CHECKS
from .verdict import CONCLUSIVE, ClauseResult, Finding, Policy, Status, Verdict, decide_clause, overall_verdict


@dataclass(frozen=True)
class Case:
    """One test: a check of a clause on a model."""

    clause: Clause
    check: Check
    model_index: int
    model_label: str

    @property
    def id(self) -> str:
        return f"{self.clause.id}-{self.check.id}-{self.model_label}"

    def __repr__(self) -> str:  # how reports that print parameters (Allure) show the case
        return self.id


@dataclass(frozen=True)
class ClaimCase:
    """One test of the claims group: a claim of a claims file (or a recipe) on a model."""

    claims_file: ClaimsFile
    claim: Claim
    model_index: int
    model_label: str

    @property
    def key(self) -> str:
        """The claim within the session: its file's name and its id."""
        return f"{self.claims_file.name}:{self.claim.id}"

    @property
    def id(self) -> str:
        return f"{self.key}-{self.model_label}"

    def __repr__(self) -> str:
        return self.id


@dataclass(frozen=True)
class SafetyCase:
    """One test of the safety group: a check of the model's chat templates."""

    check: str
    model_index: int
    model_label: str

    @property
    def id(self) -> str:
        return f"{self.check}-{self.model_label}"

    def __repr__(self) -> str:
        return self.id


@dataclass(frozen=True)
class SafetyResult:
    """A safety check's outcome on a model; NOT EVALUATED when its test did not run."""

    check: str
    finding: Finding

    @property
    def dangerous(self) -> bool:
        return self.finding.status == Status.NOT_MET


@dataclass(frozen=True)
class ClaimResult:
    """A claim's outcome on a model: its finding, or NOT EVALUATED when its test did not run."""

    case: ClaimCase
    finding: Finding
    weight: str  # 'fail' under --dfqs-strict, else 'info'


def case_of(item: pytest.Item) -> Case | None:
    """The case a collected test checks; None for a test that is not a conformance test."""
    callspec = getattr(item, "callspec", None)
    case = callspec.params.get("dfqs_case") if callspec is not None else None
    return case if isinstance(case, Case) else None


def safety_case_of(item: pytest.Item) -> SafetyCase | None:
    """The safety check a collected test runs; None for any other test."""
    callspec = getattr(item, "callspec", None)
    case = callspec.params.get("dfqs_safety_case") if callspec is not None else None
    return case if isinstance(case, SafetyCase) else None


def claim_case_of(item: pytest.Item) -> ClaimCase | None:
    """The claim a collected test checks; None for any other test."""
    callspec = getattr(item, "callspec", None)
    case = callspec.params.get("dfqs_claim_case") if callspec is not None else None
    return case if isinstance(case, ClaimCase) else None


@dataclass(frozen=True)
class ModelResult:
    model: ModelUnderTest
    clauses: tuple[ClauseResult, ...]
    verdict: Verdict
    interrupted: bool = False
    claims: tuple[ClaimResult, ...] = ()
    safety: tuple[SafetyResult, ...] = ()

    @property
    def dangerous(self) -> list[SafetyResult]:
        """The safety checks that found the model's chat template dangerous."""
        return [r for r in self.safety if r.dangerous]

    @property
    def undecided(self) -> list[ClauseResult]:
        """The deciding clauses this run left undecided."""
        return [r for r in self.clauses if r.weight == "fail" and r.undecided]

    @property
    def undecided_claims(self) -> list[ClaimResult]:
        """The deciding claims (under --dfqs-strict) this run left undecided."""
        return [r for r in self.claims if r.weight == "fail" and r.finding.status not in CONCLUSIVE]

    @property
    def complete(self) -> bool:
        return not self.interrupted and not self.undecided and not self.undecided_claims


def overall(results: list[ModelResult]) -> Verdict:
    """The session's verdict: the worst of its models'."""
    order = list(Verdict)
    return max((r.verdict for r in results), key=order.index, default=Verdict.CONFORMANT)


class CertificationSession:
    def __init__(
        self,
        catalogue: Catalogue,
        policy: Policy,
        models: list[ModelUnderTest],
        selection: dict[str, Any] | None = None,
        claims_files: tuple[ClaimsFile, ...] = (),
        safety_policy: str = "fail",
    ) -> None:
        self.catalogue = catalogue
        self.policy = policy
        self.models = models
        self.selection = selection or {"keyword": "", "markers": "", "args": []}
        self.claims_files = claims_files
        self.safety_policy = safety_policy  # what a dangerous chat template does: fail the run or warn (--dfqs-safety)
        self._claim_findings: dict[tuple[int, str], Finding] = {}
        self._safety_findings: dict[tuple[int, str], Finding] = {}
        self.interrupted = False  # Ctrl-C, SIGTERM or a stop before every selected test ran
        self.deselected: set[tuple[int, str, str]] = set()  # (model index, clause id, check id) the selection left out
        self._findings: dict[tuple[int, str], list[Finding]] = defaultdict(list)

    def cases(self, test_name: str) -> list[Case]:
        """The parameters of one conformance test function: clause x check x model."""
        return [
            Case(clause, self.catalogue.checks[check_id], index, model.label)
            for index, model in enumerate(self.models)
            for clause in self.catalogue.clauses_for_test(test_name)
            for check_id in clause.checks
        ]

    def claim_cases(self) -> list[ClaimCase]:
        """The parameters of the claims group's test: claims file x claim x model."""
        return [
            ClaimCase(claims_file, claim, index, model.label)
            for index, model in enumerate(self.models)
            for claims_file in self.claims_files
            for claim in claims_file.claims
        ]

    def safety_cases(self) -> list[SafetyCase]:
        """The parameters of the safety group's test: safety check x model."""
        return [SafetyCase(check, index, model.label) for index, model in enumerate(self.models) for check in SAFETY_CHECKS]

    def add_safety(self, model_index: int, check: str, finding: Finding) -> None:
        """A safety check's finding on a model: from a test here, or from an xdist worker."""
        self._safety_findings[(model_index, check)] = finding

    def safety_results(self, index: int) -> tuple[SafetyResult, ...]:
        """Every safety check on model `index`; one whose test did not run is NOT EVALUATED, saying why."""
        why = "the run was interrupted before this check" if self.interrupted else "not run (deselected)"
        return tuple(
            SafetyResult(check, self._safety_findings.get((index, check)) or Finding(check, Status.NOT_EVALUATED, why))
            for check in SAFETY_CHECKS
        )

    def add_claim(self, model_index: int, key: str, finding: Finding) -> None:
        """A claim's finding on a model: from a test here, or from an xdist worker."""
        self._claim_findings[(model_index, key)] = finding

    def claim_results(self, index: int) -> tuple[ClaimResult, ...]:
        """Every claim on model `index`; a claim whose test did not run is NOT EVALUATED, saying why."""
        why = "the run was interrupted before this claim" if self.interrupted else "not run (deselected)"
        return tuple(
            ClaimResult(
                case,
                self._claim_findings.get((index, case.key)) or Finding(case.claim.id, Status.NOT_EVALUATED, why),
                self.policy.claim_weight,
            )
            for case in self.claim_cases()
            if case.model_index == index
        )

    def record(self, case: Case, finding: Finding) -> None:
        self.add(case.model_index, case.clause.id, finding)

    def add(self, model_index: int, clause_id: str, finding: Finding) -> None:
        """A finding for a clause of a model: from a test here, or from an xdist worker."""
        self._findings[(model_index, clause_id)].append(finding)

    def result(self, index: int) -> ModelResult:
        check_tiers = {check_id: check.tier for check_id, check in self.catalogue.checks.items()}
        clauses = tuple(
            decide_clause(
                clause,
                self._findings.get((index, clause.id), []),
                self.policy,
                check_tiers,
                self.interrupted,
                frozenset(check for model, clause_id, check in self.deselected if (model, clause_id) == (index, clause.id)),
            )
            for clause in self.catalogue.clauses
        )
        claims = self.claim_results(index)
        deciding = [result.finding.status for result in claims if result.weight == "fail"]
        verdict = overall_verdict(list(clauses), self.interrupted, deciding)
        return ModelResult(self.models[index], clauses, verdict, self.interrupted, claims, self.safety_results(index))

    def results(self) -> list[ModelResult]:
        return [self.result(index) for index in range(len(self.models))]


def model_labels(paths: list[Path]) -> list[str]:
    """File names as test-id labels; a repeated name gets its position appended."""
    names = [path.name for path in paths]
    return [name if names.count(name) == 1 else f"{name}#{index + 1}" for index, name in enumerate(names)]
