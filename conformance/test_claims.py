"""The claims group: what claims files (--dfqs-claims) and recipes (--dfqs-recipe) state about the model, checked.

Claims are not clauses of the spec: a claim not met is reported, and decides
the verdict only under --dfqs-strict.
"""

from pytest_dfqs.assertions import assert_met
from pytest_dfqs.verdict import Finding


def test_claim(dfqs_claim_finding: Finding) -> None:
    """A fact a model card, a release or a recipe states about the file."""
    assert_met(dfqs_claim_finding)
