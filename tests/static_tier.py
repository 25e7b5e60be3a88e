"""A clause as the static tier decides it, in the test's own process: the tests that assert only on a verdict and its
words (a broken header, a typed key, a split shard, the structure and byte mutants) skip a pytest run of their own.

The same calls the plugin makes: the model under test (llama.cpp's dry run begun at once, as the session's start
begins it), each of the clause's static checks through the registry, the runtime tier's checks recorded as needing
their tier, and the clause decided under the static policy. One end-to-end run per kind of message stays in the
tests that print it (tests/reports/test_terminal.py, tests/test_plugin.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pytest_dfqs.catalogue import load_catalogue
from pytest_dfqs.clauses.registry import finding
from pytest_dfqs.model import ModelUnderTest
from pytest_dfqs.runtime.client import SpareWorkers
from pytest_dfqs.verdict import NEEDS_TIER, ClauseResult, Finding, Policy, Status, decide_clause


@dataclass(frozen=True)
class StaticVerdict:
    clause: ClauseResult
    findings: dict[str, Finding]  # by check
    workers_started: int

    @property
    def status(self) -> Status:
        return self.clause.status

    @property
    def reason(self) -> str:
        """The clause's reason, as the terminal and the certificate give it."""
        return self.clause.reason


def decided_statically(
    path: Path, clause_id: str = "DFQS-3.1", ctx: int | None = None, workers: SpareWorkers | None = None
) -> StaticVerdict:
    """`clause_id` of the file at `path` as the static tier decides it (llama.cpp's dry run in one of `workers` where
    they are given: one worker for many files)."""
    catalogue = load_catalogue()
    clause = catalogue.clause(clause_id)
    tiers = {check: catalogue.checks[check].tier for check in clause.checks}
    model = ModelUnderTest(path, path.name, ctx=ctx)
    try:
        model.begin_judging(workers)
        findings = [
            finding(model, check) if tiers[check] == "static" else Finding(check, Status.NOT_EVALUATED, "", {NEEDS_TIER: tiers[check]})
            for check in clause.checks
        ]
        started = model.worker_view()["workers_started"]
    finally:
        model.close()
    return StaticVerdict(decide_clause(clause, findings, Policy("static"), tiers), {f.check: f for f in findings}, started)
