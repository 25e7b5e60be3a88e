"""Section 11: the evaluation interface."""

from pytest_dfqs.assertions import assert_met
from pytest_dfqs.verdict import Finding


def test_evaluation_interface(dfqs_finding: Finding) -> None:
    """DFQS-11.1: All DFQS implementations SHALL report the five required metrics."""
    assert_met(dfqs_finding)


def test_measurement_convention(dfqs_finding: Finding) -> None:
    """DFQS-11.2: All metrics MUST be reported under identical prompt and runtime conditions."""
    assert_met(dfqs_finding)
