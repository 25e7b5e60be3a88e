"""Section 3: deterministic expert routing."""

from pytest_dfqs.assertions import assert_met
from pytest_dfqs.verdict import Finding


def test_routing_determinism(dfqs_finding: Finding) -> None:
    """DFQS-3.3: Routing SHALL remain deterministic under standard inference loads."""
    assert_met(dfqs_finding)
