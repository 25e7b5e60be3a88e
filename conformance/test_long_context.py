"""Section 3: long-context degradation analysis and context beyond 64K."""

from pytest_dfqs.assertions import assert_met
from pytest_dfqs.verdict import Finding


def test_long_context_degradation(dfqs_finding: Finding) -> None:
    """DFQS-3.5: Evaluation SHOULD include long-context degradation analysis."""
    assert_met(dfqs_finding)


def test_extended_context(dfqs_finding: Finding) -> None:
    """DFQS-3.7: Extended context beyond 64K MAY be supported."""
    assert_met(dfqs_finding)
