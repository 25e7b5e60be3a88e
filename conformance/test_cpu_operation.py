"""Section 3: operation in CPU-constrained environments."""

from pytest_dfqs.assertions import assert_met
from pytest_dfqs.verdict import Finding


def test_cpu_operation(dfqs_finding: Finding) -> None:
    """DFQS-3.2: Models SHALL operate in CPU-constrained environments."""
    assert_met(dfqs_finding)
