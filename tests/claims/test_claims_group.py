"""The claims group end to end: options, tests, terminal table, certificate, and what --dfqs-strict changes."""

from __future__ import annotations

import json

import pytest

from pytest_dfqs.reports.certificate import to_json
from tests.conftest import Certification, validate_certificate

CARD = """claims_format = 1
title = "the tiny MoE's card"
[sources]
card = "a model card"
[[claim]]
id = "experts"
fact = "expert_count"
value = 4
source = "card"
where = "details"
[[claim]]
id = "top-2"
fact = "expert_used_count"
value = 2
source = "card"
[[claim]]
id = "size"
fact = "file_size"
value = "61.6 GB"
source = "card"
where = "abstract"
"""


def write_card(pytester: pytest.Pytester, text: str = CARD) -> str:
    path = pytester.path / "card.toml"
    path.write_text(text)
    return str(path)


def test_each_claim_is_a_test_of_the_claims_group(certify: Certification, pytester: pytest.Pytester, moe_model: object) -> None:
    result = certify.run(f"--dfqs-model={moe_model}", f"--dfqs-claims={write_card(pytester)}", "--dfqs-recipe=ds4-q2", "-v")
    assert result.ret == 0  # a false claim does not change the verdict
    result.stdout.fnmatch_lines(
        [
            "*test_claim?card:experts-tiny-moe.gguf? PASSED*",
            "*test_claim?card:size-tiny-moe.gguf? XFAIL*",
            "*test_claim?recipe-ds4-q2:tensor-types-tiny-moe.gguf? XFAIL*",
            "verdict: INCOMPLETE at tier static*",
            "claims of card: the tiny MoE's card",
            "  experts                       MET             expert count 4; matches the claim 4 (details)",
            "  size                          NOT MET         file size *; contradicts the claim 61.6 GB (abstract)",
            "claims of recipe-ds4-q2: quantization recipe ds4-q2.txt",
            "  tensor-types                  NOT MET         *differ: *output.weight*",
            "claims: 2 met, 2 not met (informational; --dfqs-strict makes them decide the verdict)",
        ]
    )
    certificate = certify.certificate()
    validate_certificate(certificate)
    assert [f["name"] for f in certificate["settings"]["claims_files"]] == ["card", "recipe-ds4-q2"]
    claims = {c["id"]: c for c in certificate["models"][0]["claims"]}
    assert claims["size"]["status"] == "NOT MET" and claims["size"]["source"] == "a model card" and claims["size"]["weight"] == "info"
    assert certificate["verdict"] == "INCOMPLETE"


def test_under_strict_a_false_claim_fails_the_run(certify: Certification, pytester: pytest.Pytester, moe_model: object) -> None:
    result = certify.run(f"--dfqs-model={moe_model}", f"--dfqs-claims={write_card(pytester)}", "--dfqs-strict")
    assert result.ret == 1
    failed = "FAILED test_claims.py::test_claim?card:size-tiny-moe.gguf? - Failed: NOT MET*"
    result.stdout.fnmatch_lines(["verdict: NOT CONFORMANT at tier static*", failed])
    assert {c["id"]: c["weight"] for c in certify.certificate()["models"][0]["claims"]}["size"] == "fail"


def test_under_strict_an_undecided_claim_leaves_the_verdict_incomplete(
    certify: Certification, pytester: pytest.Pytester, moe_model: object
) -> None:
    """A score claim needs the eval tier: at tier static it is NOT EVALUATED, and a strict gate says so."""
    card = CARD.split("[[claim]]")[0] + '[[claim]]\nid = "humaneval"\nfact = "code_score"\nvalue = "68%"\nsource = "card"\n'
    result = certify.run(f"--dfqs-model={moe_model}", f"--dfqs-claims={write_card(pytester, card)}", "--dfqs-strict", "-k", "test_claim")
    assert result.ret == 0
    certificate = certify.certificate()
    reason = "needs --dfqs-tier eval (measured by check metrics-record) (claimed: 68%)"
    assert {"claim": "card:humaneval", "reason": reason} in certificate["models"][0]["undecided"]
    validate_certificate(certificate)


def test_shipped_claims_files_are_named_by_their_stem(certify: Certification, moe_model: object) -> None:
    result = certify.run(f"--dfqs-model={moe_model}", "--dfqs-claims=deepseek-v4-flash-iq1_s-xl", "-k", "test_claim")
    assert result.ret == 0
    heading = "claims of deepseek-v4-flash-iq1_s-xl: DeepSeek-V4-Flash-IQ1_S-XL.gguf*"
    result.stdout.fnmatch_lines([heading, "  card-file-size *NOT MET*57.3GB*"])


def test_claims_files_from_the_ini_file_are_relative_to_it(pytester: pytest.Pytester, moe_model: object) -> None:
    (pytester.path / "cards").mkdir()
    (pytester.path / "cards" / "card.toml").write_text(CARD)
    pytester.makeini("[pytest]\ndfqs_claims =\n    cards/card.toml\n    ds4-mtp\n")
    result = pytester.runpytest_subprocess(f"--dfqs-model={moe_model}", "-k", "test_claim")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["claims of card: *", "claims of ds4-mtp: *"])


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--dfqs-claims=no-such-card", "ERROR: --dfqs-claims: no-such-card does not exist (shipped with pytest-dfqs: deepseek-v4-*"),
        ("--dfqs-recipe=nope", "ERROR: --dfqs-recipe: nope does not exist (shipped with pytest-dfqs: ds4-q2, ds4-q4, dsv4-*)"),
        ("--dfqs-claims={bad}", "ERROR: --dfqs-claims: *card.toml: claim 1 (file_size): '61.6 GX': unit 'GX' is not one of*"),
    ],
)
def test_a_bad_claims_file_is_a_usage_error(pytester: pytest.Pytester, moe_model: object, option: str, message: str) -> None:
    bad = write_card(pytester, 'claims_format = 1\n[[claim]]\nfact = "file_size"\nvalue = "61.6 GX"\n')
    result = pytester.runpytest_inprocess(f"--dfqs-model={moe_model}", option.format(bad=bad))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()


def test_open_intervals_and_hostile_floats_stay_strict_json(certify: Certification, moe_model: object) -> None:
    """'< 70 GB' has no lower end: the certificate says null, never -Infinity, which JSON readers (Allure's) refuse."""
    assert certify.run(f"--dfqs-model={moe_model}", "--dfqs-profile=reference").ret == 1
    envelope = next(f for f in certify.clause("DFQS-9.1")["findings"] if f["check"] == "sub-70gb")
    low, high = envelope["evidence"]["admitted"]
    assert low is None and 69.99e9 < high < 70e9
    assert json.loads(to_json({"nan": float("nan"), "open": [float("-inf"), 1.0]})) == {"nan": "nan", "open": ["-inf", 1.0]}
