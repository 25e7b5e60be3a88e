"""The second real model: Gemma 3 270M, joined from its PyPI chunks, certified like any file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Certification, validate_certificate

pytestmark = pytest.mark.timeout(900)


def test_gemma3_is_joined_checked_and_certified_at_the_runtime_tier(certify: Certification, gemma3: Path) -> None:
    """The publisher's SHA256SUMS decides DFQS-AI.1; llama.cpp loads and runs the gemma3 architecture on the CPU."""
    result = certify.run(f"--dfqs-model={gemma3}", "--dfqs-tier=runtime", f"--dfqs-checksums={gemma3.with_name('SHA256SUMS')}")
    assert result.ret == 0, result.stdout.str()[-3000:]
    certificate = certify.certificate()
    validate_certificate(certificate)
    assert certificate["models"][0]["facts"]["architecture"] == "gemma3"
    statuses = {clause["id"]: clause["status"] for clause in certificate["models"][0]["clauses"]}
    assert statuses["DFQS-AI.1"] == statuses["DFQS-3.1"] == statuses["DFQS-3.2"] == statuses["DFQS-3.4"] == "MET"
    assert statuses["DFQS-3.3"] == "NOT APPLICABLE"  # a dense model: no routing
