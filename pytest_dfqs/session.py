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
from .model import ModelUnderTest
from .verdict import ClauseResult, Finding, Policy, Verdict, decide_clause, overall_verdict


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


def case_of(item: pytest.Item) -> Case | None:
    """The case a collected test checks; None for a test that is not a conformance test."""
    callspec = getattr(item, "callspec", None)
    case = callspec.params.get("dfqs_case") if callspec is not None else None
    return case if isinstance(case, Case) else None


@dataclass(frozen=True)
class ModelResult:
    model: ModelUnderTest
    clauses: tuple[ClauseResult, ...]
    verdict: Verdict
    interrupted: bool = False

    @property
    def undecided(self) -> list[ClauseResult]:
        """The deciding clauses this run left undecided."""
        return [r for r in self.clauses if r.weight == "fail" and r.undecided]

    @property
    def complete(self) -> bool:
        return not self.interrupted and not self.undecided


def overall(results: list[ModelResult]) -> Verdict:
    """The session's verdict: the worst of its models'."""
    order = list(Verdict)
    return max((r.verdict for r in results), key=order.index, default=Verdict.CONFORMANT)


class CertificationSession:
    def __init__(self, catalogue: Catalogue, policy: Policy, models: list[ModelUnderTest], selection: dict[str, Any] | None = None) -> None:
        self.catalogue = catalogue
        self.policy = policy
        self.models = models
        self.selection = selection or {"keyword": "", "markers": "", "args": []}
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
        return ModelResult(self.models[index], clauses, overall_verdict(list(clauses), self.interrupted), self.interrupted)

    def results(self) -> list[ModelResult]:
        return [self.result(index) for index in range(len(self.models))]


def model_labels(paths: list[Path]) -> list[str]:
    """File names as test-id labels; a repeated name gets its position appended."""
    names = [path.name for path in paths]
    return [name if names.count(name) == 1 else f"{name}#{index + 1}" for index, name in enumerate(names)]
