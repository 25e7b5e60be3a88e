"""How a conformance test turns a finding into a pytest outcome."""

from __future__ import annotations

import pytest

from .verdict import Finding, Status


def assert_met(finding: Finding) -> None:
    """Pass on MET, fail on NOT MET, skip with the reason otherwise.

    An ERROR (the check could not run) decides nothing about the model: like NOT
    EVALUATED it is a skip, and the verdict says INCOMPLETE, naming it.
    """
    if finding.status == Status.MET:
        return
    if finding.status == Status.NOT_MET:
        pytest.fail(f"{finding.status.value} [{finding.check}]: {finding.summary}", pytrace=False)
    where = f" [{finding.check}]" if finding.status == Status.ERROR else ""
    pytest.skip(f"{finding.status.value}{where}: {finding.summary}")
