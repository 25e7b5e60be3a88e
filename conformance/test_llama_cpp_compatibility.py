"""Section 3: llama.cpp runtime compatibility."""

from pytest_dfqs.assertions import assert_met
from pytest_dfqs.verdict import Finding


def test_llama_cpp_compatibility(dfqs_finding: Finding) -> None:
    """DFQS-3.4: Implementations SHOULD support llama.cpp runtime compatibility."""
    assert_met(dfqs_finding)
