"""Section 3: GPU acceleration."""

from pytest_dfqs.assertions import assert_met
from pytest_dfqs.verdict import Finding


def test_gpu_acceleration(dfqs_finding: Finding) -> None:
    """DFQS-3.6: GPU acceleration MAY be used for optimization."""
    assert_met(dfqs_finding)
