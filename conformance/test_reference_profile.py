"""Sections 5, 9 and 14: the reference artifact's published figures (--dfqs-profile reference)."""

from pytest_dfqs.assertions import assert_met
from pytest_dfqs.verdict import Finding


def test_reference_architecture(dfqs_finding: Finding) -> None:
    """DFQS-5.1: Architecture: Mixture-of-Experts (MoE)."""
    assert_met(dfqs_finding)


def test_reference_active_parameters(dfqs_finding: Finding) -> None:
    """DFQS-5.2: Active Params: 13B."""
    assert_met(dfqs_finding)


def test_reference_total_parameters(dfqs_finding: Finding) -> None:
    """DFQS-5.3: Total Params: 284B."""
    assert_met(dfqs_finding)


def test_reference_size(dfqs_finding: Finding) -> None:
    """DFQS-5.4: Size: 61.6GB."""
    assert_met(dfqs_finding)


def test_reference_format(dfqs_finding: Finding) -> None:
    """DFQS-5.5: Format: GGUF (single-file)."""
    assert_met(dfqs_finding)


def test_reference_runtime(dfqs_finding: Finding) -> None:
    """DFQS-5.6: Runtime: llama.cpp."""
    assert_met(dfqs_finding)


def test_reference_envelope(dfqs_finding: Finding) -> None:
    """DFQS-9.1: Sub-70GB operational envelope."""
    assert_met(dfqs_finding)


def test_expert_coherence(dfqs_finding: Finding) -> None:
    """DFQS-10.1: Expert Coherence: Preserved (against --dfqs-reference-model)."""
    assert_met(dfqs_finding)


def test_hardware_envelope(dfqs_finding: Finding) -> None:
    """DFQS-14.1: RAM: 80GB minimum, 128GB recommended."""
    assert_met(dfqs_finding)
