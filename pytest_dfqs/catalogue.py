"""The clause catalogue: every normative statement of DFQS v1.0 as data.

The catalogue lives in conformance/clauses.toml and is read with tomllib. It
is the single source of clause ids, the spec's words, levels and tiers; test
ids, the terminal table, the certificate and Allure labels all come from it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _shipped_dir(name: str) -> Path:
    """A data folder: inside the package when installed, beside it in a checkout."""
    inside = PACKAGE_DIR / name
    return inside if inside.is_dir() else PACKAGE_DIR.parent / name


CONFORMANCE_DIR = _shipped_dir("conformance")
SCHEMAS_DIR = _shipped_dir("schemas")
CATALOGUE_FILE = CONFORMANCE_DIR / "clauses.toml"
LEVELS = ("SHALL", "SHOULD", "MAY")
TIERS = ("static", "runtime", "eval")
PROFILES = ("reference",)


@dataclass(frozen=True)
class Check:
    """One piece of evidence, collected by one test per model."""

    id: str
    tier: str
    description: str


@dataclass(frozen=True)
class Clause:
    """One normative statement of the spec."""

    id: str
    section: str
    level: str
    text: str
    tier: str
    checks: tuple[str, ...]
    test: str
    profile: str | None = None


@dataclass(frozen=True)
class Catalogue:
    spec: str
    spec_title: str
    spec_doi: str
    version: int
    clauses: tuple[Clause, ...]
    checks: dict[str, Check]
    sections: dict[str, str]

    def clause(self, clause_id: str) -> Clause:
        return next(c for c in self.clauses if c.id == clause_id)

    def clauses_for_test(self, test_name: str) -> tuple[Clause, ...]:
        return tuple(c for c in self.clauses if c.test == test_name)


class CatalogueError(Exception):
    """The catalogue file is malformed."""


def tier_rank(tier: str) -> int:
    return TIERS.index(tier)


@cache
def load_catalogue(path: Path = CATALOGUE_FILE) -> Catalogue:
    """Read and validate the catalogue file once per process."""
    with open(path, "rb") as handle:
        data = tomllib.load(handle)
    checks = {entry["id"]: Check(**entry) for entry in data.get("check", [])}
    clauses = tuple(_clause(entry) for entry in data.get("clause", []))
    catalogue = Catalogue(
        data["spec"], data["spec_title"], data["spec_doi"], data["catalogue_version"], clauses, checks, data.get("sections", {})
    )
    problems = catalogue_problems(catalogue)
    if problems:
        raise CatalogueError(f"{path}: " + "; ".join(problems))
    return catalogue


def _clause(entry: dict) -> Clause:
    return Clause(**{**entry, "checks": tuple(entry["checks"])})


def catalogue_problems(catalogue: Catalogue) -> list[str]:
    """Everything that makes the catalogue unusable, as readable sentences."""
    problems: list[str] = []
    ids = [clause.id for clause in catalogue.clauses]
    problems += [f"clause id {i} appears more than once" for i in sorted({i for i in ids if ids.count(i) > 1})]
    for clause in catalogue.clauses:
        problems += _clause_problems(clause, catalogue.checks)
    problems += [
        f"{c.id}: section {c.section!r} has no title in [sections]" for c in catalogue.clauses if c.section not in catalogue.sections
    ]
    for check in catalogue.checks.values():
        if check.tier not in TIERS:
            problems.append(f"check {check.id}: tier {check.tier!r} is not one of {TIERS}")
    return problems


def _clause_problems(clause: Clause, checks: dict[str, Check]) -> list[str]:
    problems = []
    if clause.level not in LEVELS:
        problems.append(f"{clause.id}: level {clause.level!r} is not one of {LEVELS}")
    if clause.tier not in TIERS:
        problems.append(f"{clause.id}: tier {clause.tier!r} is not one of {TIERS}")
    if clause.profile is not None and clause.profile not in PROFILES:
        problems.append(f"{clause.id}: profile {clause.profile!r} is not one of {PROFILES}")
    if not clause.checks:
        problems.append(f"{clause.id}: names no check")
    problems += [f"{clause.id}: check {name!r} is not declared" for name in clause.checks if name not in checks]
    return problems
