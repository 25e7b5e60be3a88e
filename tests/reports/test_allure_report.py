"""Allure results carry the catalogue's labels, severities, parameters and the evidence as attachments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_dfqs.catalogue import load_catalogue
from pytest_dfqs.safety.checks import SAFETY_CHECKS
from tests.conftest import Certification, SharedRun

pytestmark = pytest.mark.timeout(600)


def read_results(folder: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in folder.glob("*-result.json")]


def labels(result: dict) -> dict[str, str]:
    return {label["name"]: label["value"] for label in result["labels"]}


def attachment_names(result: dict) -> list[str]:
    return [a["name"] for a in result.get("attachments", [])]


def test_results_carry_labels_and_evidence(certify: Certification, split_model: Path, pytester: pytest.Pytester) -> None:
    results_dir = pytester.path / "allure-results"
    assert certify.run(f"--dfqs-model={split_model}", f"--alluredir={results_dir}").ret == 1
    results = read_results(results_dir)
    assert len(results) == sum(len(clause.checks) for clause in load_catalogue().clauses) + len(SAFETY_CHECKS)  # and safety's
    safety = next(r for r in results if r["name"] == "template-code tiny-split-00001-of-00002.gguf")
    assert labels(safety)["feature"] == "chat template safety" and safety["status"] == "skipped"  # no template: not applicable
    no_split = next(r for r in results if r["name"] == "DFQS-3.1 [no-split] tiny-split-00001-of-00002.gguf")
    assert no_split["status"] == "failed" and "shard 1 of 2" in no_split["statusDetails"]["message"]
    assert {k: labels(no_split)[k] for k in ("epic", "feature", "story", "severity", "dfqs_level")} == {
        "epic": "DFQS v1.0",
        "feature": "3. Normative requirements",
        "story": "DFQS-3.1 DFQS-IQ1_S-XL SHALL support single-file GGUF execution",
        "severity": "critical",
        "dfqs_level": "SHALL",
    }
    assert {"name": "model", "value": "'tiny-split-00001-of-00002.gguf'"} in no_split["parameters"]
    assert "Checked: no split metadata" in no_split["description"]
    assert attachment_names(no_split) == ["finding no-split", "model facts"]
    evidence = json.loads((results_dir / no_split["attachments"][0]["source"]).read_text())
    assert evidence["status"] == "NOT MET" and evidence["evidence"]["split.count"] == 2
    certificates = [r for r in results if "certificate" in attachment_names(r)]
    assert len(certificates) == 1
    attached = next(a for a in certificates[0]["attachments"] if a["name"] == "certificate")
    assert json.loads((results_dir / attached["source"]).read_text())["verdict"] == "NOT CONFORMANT"
    severities = {labels(r)["story"].split()[0]: labels(r)["severity"] for r in results}
    assert severities["DFQS-3.4"] == "normal" and severities["DFQS-3.6"] == "minor"


def test_claims_are_the_claims_feature(certify: Certification, moe_model: Path, pytester: pytest.Pytester) -> None:
    results_dir = pytester.path / "allure-results"
    assert certify.run(f"--dfqs-model={moe_model}", "--dfqs-claims=ds4-mtp", f"--alluredir={results_dir}").ret == 0
    results = read_results(results_dir)
    claim = next(r for r in results if labels(r).get("feature") == "claims")
    assert claim["name"] == "card-file-size [file_size] tiny-moe.gguf" and "NOT MET [card-file-size]" in claim["statusDetails"]["message"]
    assert labels(claim)["story"].startswith("ds4-mtp: DeepSeek V4 Flash MTP") and labels(claim)["dfqs_claim"] == "ds4-mtp:card-file-size"
    assert "Claimed by model card of antirez's DeepSeek V4 Flash GGUF" in claim["description"]
    assert attachment_names(claim)[0] == "finding card-file-size"
    assert "certificate" in attachment_names(claim)  # the model's last test, after its claims, carries the certificate


def test_session_files(certify: Certification, moe_model: Path, pytester: pytest.Pytester) -> None:
    results_dir = pytester.path / "allure-results"
    assert certify.run(f"--dfqs-model={moe_model}", f"--alluredir={results_dir}").ret == 0
    environment = dict(line.split("=", 1) for line in (results_dir / "environment.properties").read_text().splitlines())
    assert environment["model.file"] == str(moe_model) and environment["model.architecture"] == "llama"
    assert environment["model.size_bytes"] == str(moe_model.stat().st_size) and environment["model.verdict"] == "INCOMPLETE"
    assert environment["model.complete"] == "false"
    assert {"cpu", "threads", "llama_cpp_python", "llama_cpp_build", "dfqs.tier"} <= set(environment)
    categories = json.loads((results_dir / "categories.json").read_text())
    assert [c["name"] for c in categories] == [
        "Dangerous chat templates",
        "SHALL violations",
        "Checks that could not run",
        "SHOULD warnings",
        "Errors of the suite itself",
    ]
    assert json.loads((results_dir / "dfqs-certificate.json").read_text())["verdict"] == "INCOMPLETE"


def test_runtime_and_eval_attachments(tiny_moe_quick_eval: SharedRun) -> None:
    """The tiny MoE's quick evaluation of the session, with --alluredir (tests/conftest.py)."""
    results_dir = tiny_moe_quick_eval.folder / "allure-results"
    result = tiny_moe_quick_eval.result
    assert result.ret == 0, result.stdout.str()
    results = {r["name"]: r for r in read_results(results_dir)}
    routing = results["DFQS-3.3 [routing-determinism] tiny-moe-4k.gguf"]
    assert "routing trace summary" in attachment_names(routing)
    record = results["DFQS-11.1 [metrics-record] tiny-moe-4k.gguf"]
    assert {"metrics record", "context stability curve"} <= set(attachment_names(record))
    plot = next(a for a in record["attachments"] if a["name"] == "context stability curve")
    assert plot["type"] == "image/png" and (results_dir / plot["source"]).stat().st_size > 10_000


def test_nothing_allure_without_alluredir(moe_static: SharedRun) -> None:
    assert moe_static.result.ret == 0
    assert not list(moe_static.folder.glob("**/*-result.json"))
