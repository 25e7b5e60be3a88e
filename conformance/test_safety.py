"""The safety group: the model's chat templates, untrusted code, read without running and rendered only in a bounded sandbox.

Safety is not a clause of the spec: a dangerous template fails the run (exit
1, unless --dfqs-safety=warn) and leaves the DFQS verdict as the clauses made it.
"""

from pytest_dfqs.assertions import assert_met
from pytest_dfqs.verdict import Finding


def test_chat_template_safety(dfqs_safety_finding: Finding) -> None:
    """template-code: what the template's code reaches for; template-renders: what the sandbox saw it do."""
    assert_met(dfqs_safety_finding)
