"""hf:// models through huggingface_hub against a Hub-compatible server on the loopback (tests/hub_server.py)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_dfqs.remote.hub import choose_quant
from tests.conftest import Certification
from tests.hub_server import TOKEN, Hub

pytest.importorskip("huggingface_hub")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, moe_model: Path, runtime_moe_model: Path) -> Iterator[Hub]:
    root = tmp_path_factory.mktemp("hub")
    for repo in ("testorg/tiny-GGUF", "testorg/private-GGUF"):
        (root / repo).mkdir(parents=True)
        (root / repo / "tiny-Q4_K_M.gguf").symlink_to(moe_model)
        (root / repo / "tiny-Q8_0.gguf").symlink_to(runtime_moe_model)
        (root / repo / "README.md").write_text("# tiny\n")
    server = Hub(root, private=("testorg/private-GGUF",))
    yield server
    server.stop()


@pytest.fixture
def on_the_hub(hub: Hub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Hub:
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return hub


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def clauses(certify: Certification) -> dict[str, dict]:
    return {clause["id"]: clause for clause in certify.certificate()["models"][0]["clauses"]}


def test_a_hub_model_gets_the_static_verdicts_of_the_file_and_its_stated_digest(
    on_the_hub: Hub, certify: Certification, moe_model: Path, pytester: pytest.Pytester
) -> None:
    by_path = Certification(pytester)
    by_path.report = pytester.path / "by-path.json"
    by_path.run(f"--dfqs-model={moe_model}")
    result = certify.run("--dfqs-model=hf://testorg/tiny-GGUF/tiny-Q4_K_M.gguf", f"--dfqs-sha256={sha256(moe_model)}")
    expected = {clause: found["status"] for clause, found in clauses(by_path).items()} | {"DFQS-AI.1": "MET"}
    assert {clause: found["status"] for clause, found in clauses(certify).items()} == expected
    model = certify.certificate()["models"][0]
    remote = model["remote"]
    assert remote["commit"] == on_the_hub.commit("testorg/tiny-GGUF") and remote["revision"] == "main"
    assert remote["stated_sha256"] == sha256(moe_model) and remote["sha256"] is None
    finding = clauses(certify)["DFQS-AI.1"]["findings"][0]
    assert finding["summary"].endswith(
        f"as stated by the Hub (the Hub's LFS SHA-256 at commit {remote['commit']}); the bytes were not hashed here"
    )
    result.stdout.fnmatch_lines(["dfqs model: tiny-Q4_K_M.gguf (hf://testorg/tiny-GGUF/tiny-Q4_K_M.gguf)"])


def test_a_digest_the_hub_does_not_state_is_not_met(on_the_hub: Hub, certify: Certification) -> None:
    certify.run("--dfqs-model=hf://testorg/tiny-GGUF@main/tiny-Q4_K_M.gguf", f"--dfqs-sha256={'0' * 64}")
    finding = clauses(certify)["DFQS-AI.1"]["findings"][0]
    assert finding["status"] == "NOT MET" and "the file served is not the published one" in finding["summary"]


def test_a_quant_tag_picks_the_file_llama_cpps_hf_picks(on_the_hub: Hub, certify: Certification, runtime_moe_model: Path) -> None:
    certify.run("--dfqs-model=hf://testorg/tiny-GGUF:q8_0")
    model = certify.certificate()["models"][0]
    assert model["file_name"] == "tiny-Q8_0.gguf" and model["remote"]["stated_sha256"] == sha256(runtime_moe_model)


def test_choose_quant_follows_llama_cpp() -> None:
    files = ["a/m-Q2_K.gguf", "a/m-Q8_0.gguf", "m-Q4_K_M-00002-of-00002.gguf", "m-Q4_K_M-00001-of-00002.gguf", "mmproj-Q8_0.gguf", "x.md"]
    assert choose_quant(files, "Q4_K_M") == "m-Q4_K_M-00001-of-00002.gguf"  # the first shard of a split set
    assert choose_quant(files, "") == "m-Q4_K_M-00001-of-00002.gguf"  # no tag: Q4_K_M first
    assert choose_quant(["a/m-Q2_K.gguf", "a/m-Q8_0.gguf"], "") == "a/m-Q8_0.gguf"  # then Q8_0
    assert choose_quant(["b.gguf", "a.gguf"], "") == "a.gguf"  # then the first


@pytest.mark.parametrize(
    ("name", "said"),
    [
        (
            "hf://testorg/nothing-GGUF/x.gguf",
            "ERROR: --dfqs-model hf://testorg/nothing-GGUF/x.gguf: testorg/nothing-GGUF@main/x.gguf: no such repository*",
        ),
        (
            "hf://testorg/private-GGUF/tiny-Q8_0.gguf",
            "ERROR: *: no such repository on the Hub, or it is private and needs a token: set HF_TOKEN*",
        ),
        ("hf://testorg/tiny-GGUF/absent.gguf", "ERROR: *testorg/tiny-GGUF@main/absent.gguf: the repository has no such file"),
        ("hf://testorg/tiny-GGUF@v9/tiny-Q8_0.gguf", "ERROR: *: the repository has no such revision"),
        (
            "hf://testorg/tiny-GGUF:IQ1_S",
            "ERROR: *: no GGUF file in the repository matches IQ1_S (its GGUF files: tiny-Q4_K_M.gguf, tiny-Q8_0.gguf)",
        ),
        ("hf://testorg", "ERROR: --dfqs-model: hf://testorg is not hf://OWNER/REPO/PATH.gguf*"),
    ],
)
def test_what_the_hub_refuses_is_one_line(on_the_hub: Hub, certify: Certification, name: str, said: str) -> None:
    result = certify.run(f"--dfqs-model={name}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([said])


def test_a_token_opens_a_private_repository(on_the_hub: Hub, certify: Certification, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    result = certify.run("--dfqs-model=hf://testorg/private-GGUF/tiny-Q8_0.gguf")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    assert json.loads(certify.report.read_text())["models"][0]["remote"]["commit"] == on_the_hub.commit("testorg/private-GGUF")


def test_a_hub_download_lands_in_the_hubs_cache_and_runs_the_runtime_tier(
    on_the_hub: Hub, certify: Certification, runtime_moe_model: Path, tmp_path: Path
) -> None:
    name = "hf://testorg/tiny-GGUF/tiny-Q8_0.gguf"  # the 4,096-token MoE: the runtime tier without its 64K decode
    only = "-k=cpu_operation or artifact_integrity"
    result = certify.run(
        f"--dfqs-model={name}", "--dfqs-download", "--dfqs-tier=runtime", only, f"--dfqs-sha256={sha256(runtime_moe_model)}"
    )
    assert result.ret == 0, result.stdout.str()
    model = certify.certificate()["models"][0]
    found = clauses(certify)
    assert found["DFQS-3.2"]["status"] == "MET" and found["DFQS-AI.1"]["status"] == "MET", found
    snapshot = tmp_path / "hf-home" / "hub" / "models--testorg--tiny-GGUF" / "snapshots" / model["remote"]["commit"] / "tiny-Q8_0.gguf"
    assert snapshot.is_file() and sha256(snapshot) == model["remote"]["sha256"] == sha256(runtime_moe_model)
    assert model["remote"]["received"] == runtime_moe_model.stat().st_size
    again = certify.run(f"--dfqs-model={name}", "--dfqs-tier=runtime", only)  # the Hub's cache has it: no download, no hash
    again.stdout.fnmatch_lines(["*the whole file downloaded by an earlier run*"])
    assert clauses(certify)["DFQS-3.2"]["status"] == "MET"
