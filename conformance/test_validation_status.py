"""Section 15: the reference artifact's validation status (--dfqs-profile reference)."""

from pytest_dfqs.assertions import assert_met
from pytest_dfqs.verdict import Finding


def test_validation_integrity(dfqs_finding: Finding) -> None:
    """DFQS-15.1: GGUF integrity: validated at load-time."""
    assert_met(dfqs_finding)


def test_validation_single_file(dfqs_finding: Finding) -> None:
    """DFQS-15.2: Single-file structure: confirmed."""
    assert_met(dfqs_finding)


def test_validation_llama_cpp(dfqs_finding: Finding) -> None:
    """DFQS-15.3: llama.cpp compatibility: tested."""
    assert_met(dfqs_finding)


def test_validation_cpu_inference(dfqs_finding: Finding) -> None:
    """DFQS-15.4: CPU inference: operational."""
    assert_met(dfqs_finding)
