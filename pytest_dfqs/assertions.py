"""How a conformance test turns a finding into a pytest outcome."""

from __future__ import annotations

import pytest

from .verdict import Finding, Status


def assert_met(finding: Finding) -> None:
    """Pass on MET, skip with the reason when not applicable or not evaluated, fail on NOT MET.

    (An ERROR finding never reaches a test: its fixture already ended it as a pytest error.)
    """
    if finding.status == Status.MET:
        return
    if finding.status in (Status.NOT_APPLICABLE, Status.NOT_EVALUATED):
        pytest.skip(f"{finding.status.value}: {finding.summary}")
    pytest.fail(f"{finding.status.value} [{finding.check}]: {finding.summary}", pytrace=False)
