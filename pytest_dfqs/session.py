"""What one pytest session certifies: its models, the policy, the findings.

The plugin keeps one `CertificationSession` in the config's stash; tests
record findings into it and the terminal summary and the certificate read the
clause results back.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from .catalogue import Catalogue, Check, Clause
from .model import ModelUnderTest
from .verdict import ClauseResult, Finding, Policy, Status, Verdict, decide_clause, overall_verdict


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
class ModelResult:
    model: ModelUnderTest
    clauses: tuple[ClauseResult, ...]
    verdict: Verdict


class CertificationSession:
    def __init__(self, catalogue: Catalogue, policy: Policy, models: list[ModelUnderTest]) -> None:
        self.catalogue = catalogue
        self.policy = policy
        self.models = models
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
        self._findings[(case.model_index, case.clause.id)].append(finding)

    def export(self) -> dict:
        """This process's findings and model accounts, as JSON for the xdist controller."""
        findings = [
            {"model": index, "clause": clause_id, "check": f.check, "status": f.status.value, "summary": f.summary, "evidence": f.evidence}
            for (index, clause_id), found in self._findings.items()
            for f in found
        ]
        return {"findings": findings, "models": [model.worker_view() for model in self.models]}

    def merge(self, exported: dict) -> None:
        """Take in what an xdist worker exported."""
        for item in exported["findings"]:
            finding = Finding(item["check"], Status(item["status"]), item["summary"], item["evidence"])
            self._findings[(item["model"], item["clause"])].append(finding)
        for model, view in zip(self.models, exported["models"]):
            model.absorb(view)

    def result(self, index: int) -> ModelResult:
        clauses = tuple(
            decide_clause(clause, self._findings.get((index, clause.id), []), self.policy)
            for clause in self.catalogue.clauses
        )
        return ModelResult(self.models[index], clauses, overall_verdict(list(clauses)))

    def results(self) -> list[ModelResult]:
        return [self.result(index) for index in range(len(self.models))]


def model_labels(paths: list[Path]) -> list[str]:
    """File names as test-id labels; a repeated name gets its position appended."""
    names = [path.name for path in paths]
    return [name if names.count(name) == 1 else f"{name}#{index + 1}" for index, name in enumerate(names)]
