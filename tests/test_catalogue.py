"""The clause catalogue is well formed and quotes the spec word for word."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from pytest_dfqs.catalogue import CONFORMANCE_DIR, Catalogue, CatalogueError, catalogue_problems, load_catalogue
from pytest_dfqs.clauses.registry import CHECKS

SPEC = CONFORMANCE_DIR / "spec" / "DFQS-v1.0.txt"


def folded(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def test_catalogue_is_well_formed(catalogue: Catalogue) -> None:
    assert catalogue_problems(catalogue) == []
    ids = [clause.id for clause in catalogue.clauses]
    assert len(ids) == len(set(ids))
    assert all(clause.checks for clause in catalogue.clauses)


def test_every_named_check_is_declared_and_implemented(catalogue: Catalogue) -> None:
    named = {check for clause in catalogue.clauses for check in clause.checks}
    assert named <= set(catalogue.checks)
    assert set(catalogue.checks) == set(CHECKS), "declared checks and implemented checks differ"
    assert named == set(catalogue.checks), "a declared check is named by no clause"


def test_every_clause_has_its_test_function(catalogue: Catalogue) -> None:
    """Each test function of the suite tests clauses, but the claims group's and the safety group's (neither are clauses)."""
    defined = set()
    for module in CONFORMANCE_DIR.glob("test_*.py"):
        if module.name in ("test_claims.py", "test_safety.py"):
            continue
        tree = ast.parse(module.read_text())
        defined |= {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert {clause.test for clause in catalogue.clauses} == defined


def test_clause_texts_are_the_specs_own_words(catalogue: Catalogue) -> None:
    spec = folded(SPEC.read_text(encoding="utf-8"))
    for clause in catalogue.clauses:
        assert folded(clause.text) in spec, clause.id


def test_every_normative_statement_of_sections_3_and_11_is_a_clause(catalogue: Catalogue) -> None:
    spec = SPEC.read_text(encoding="utf-8")
    section_3 = spec[spec.index("3. NORMATIVE REQUIREMENTS") : spec.index("4. REFERENCE IMPLEMENTATION")]
    headings = {"SHALL", "SHOULD", "MAY"}
    statements = [
        line.lstrip("- ").strip()
        for line in section_3.splitlines()
        if re.search(r"\b(SHALL|SHOULD|MAY)\b", line) and line.strip() not in headings
    ]
    section_11 = spec[spec.index("11. EVALUATION INTERFACE") : spec.index("12. IMPLEMENTATION NOTES")]
    statements += [line.strip() for line in section_11.splitlines() if re.search(r"\b(SHALL|MUST)\b", line)]
    texts = [folded(c.text) for c in catalogue.clauses]
    for statement in statements:
        assert any(text.startswith(folded(statement)) for text in texts), statement
    assert len(statements) == 9


def test_levels_follow_the_words(catalogue: Catalogue) -> None:
    for clause in catalogue.clauses:
        if clause.section in ("3", "11"):
            assert clause.level in clause.text or (clause.level == "SHALL" and "MUST" in clause.text), clause.id


def test_a_malformed_catalogue_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "clauses.toml"
    bad.write_text(
        'spec = "x"\nspec_title = "x"\nspec_doi = "x"\ncatalogue_version = 1\n'
        '[[clause]]\nid = "A"\nsection = "3"\nlevel = "OUGHT"\ntext = "t"\ntier = "static"\nchecks = ["nope"]\ntest = "t"\n'
        '[[clause]]\nid = "A"\nsection = "3"\nlevel = "MAY"\ntext = "t"\ntier = "static"\nchecks = []\ntest = "t"\n'
    )
    with pytest.raises(CatalogueError) as error:
        load_catalogue(bad)
    message = str(error.value)
    assert "clause id A appears more than once" in message
    assert "level 'OUGHT'" in message and "check 'nope' is not declared" in message and "names no check" in message
