"""Section 3: single-file GGUF execution."""

from pytest_dfqs.assertions import assert_met
from pytest_dfqs.verdict import Finding


def test_single_file(dfqs_finding: Finding) -> None:
    """DFQS-3.1: DFQS-IQ1_S-XL SHALL support single-file GGUF execution."""
    assert_met(dfqs_finding)
