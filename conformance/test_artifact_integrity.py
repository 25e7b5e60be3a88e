"""The artifact-integrity block: the file's SHA-256."""

from pytest_dfqs.assertions import assert_met
from pytest_dfqs.verdict import Finding


def test_artifact_integrity(dfqs_finding: Finding) -> None:
    """DFQS-AI.1: The published SHA-256 verifies file integrity."""
    assert_met(dfqs_finding)
