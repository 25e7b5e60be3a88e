"""`--dfqs-model URL`: the static tier and its verdicts from the header alone, the rest honestly not evaluated."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import Certification, validate_certificate
from tests.servers import DEEPSEEK_SIZED, NGINX, Nginx

pytestmark = pytest.mark.skipif(not os.access(NGINX, os.X_OK), reason="nginx is not installed (.ci/run installs Debian's nginx-light)")


def statuses(certify: Certification) -> dict[str, str]:
    return {clause["id"]: clause["status"] for clause in certify.certificate()["models"][0]["clauses"]}


@pytest.mark.parametrize("name", ["tiny-moe.gguf", "SmolLM2.gguf", "gemma3.gguf", DEEPSEEK_SIZED])
def test_a_model_by_url_gets_the_static_verdicts_it_gets_by_path(served: Nginx, name: str, pytester: pytest.Pytester) -> None:
    by_path, by_url = Certification(pytester), Certification(pytester)
    by_url.report = pytester.path / "by-url.json"
    # a shipped card's claims, checked on the header alone (not on the 61.6 GB file: by path its digest claim hashes 61.6 GB)
    claims = "--dfqs-claims=deepseek-v4-flash-iq1_s-xl" if name != DEEPSEEK_SIZED else "--dfqs-tier=static"
    local = by_path.run(f"--dfqs-model={served.root / name}", claims)
    remote = by_url.run(f"--dfqs-model={served.url(name)}", claims)
    assert remote.ret == local.ret, remote.stdout.str()
    assert statuses(by_url) == statuses(by_path)
    url_claims, path_claims = ({c["id"]: c for c in run.certificate()["models"][0]["claims"]} for run in (by_url, by_path))
    if name != DEEPSEEK_SIZED:
        assert url_claims.pop("spec-sha256")["status"] == "NOT EVALUATED"  # the digest needs the bytes (a plain URL states none)
        path_claims.pop("spec-sha256")
        assert len(url_claims) > 5
    assert {k: c["status"] for k, c in url_claims.items()} == {k: c["status"] for k, c in path_claims.items()}
    model = by_url.certificate()["models"][0]
    validate_certificate(by_url.certificate())
    assert model["path"] == served.url(name) and model["file_name"] == name
    assert model["remote"]["size"] == (served.root / name).stat().st_size
    plan, local_plan = model["memory_plan"], by_path.certificate()["models"][0]["memory_plan"]
    assert plan["weights_bytes"] == local_plan["weights_bytes"] and plan["cache_bytes"] == local_plan["cache_bytes"]
    assert plan["needs_bytes"] == pytest.approx(local_plan["needs_bytes"], rel=1e-3)  # the heap llama.cpp takes varies a little
    remote.stdout.fnmatch_lines([f"dfqs model: {name} ({served.url(name)})", "  header fetched: * in * range requests of 1.05 MB at most*"])
    assert "llama.cpp, no weight read:" in remote.stdout.str()


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("tiny-split-00001-of-00002.gguf", "the set is complete (2 shards, 23 tensors)"),
        ("lonely-00001-of-00002.gguf", "missing shard 2 of 2"),
    ],
)
def test_a_split_set_by_url_is_judged_as_it_is_by_path(served: Nginx, name: str, said: str, pytester: pytest.Pytester) -> None:
    alone = pytester.mkdir("alone")
    (alone / name).symlink_to(served.root / name)  # by path, shard 1 without its sibling unless the folder has it
    if name.startswith("tiny-split"):
        (alone / name.replace("00001-of", "00002-of")).symlink_to(served.root / name.replace("00001-of", "00002-of"))
    by_path, by_url = Certification(pytester), Certification(pytester)
    by_url.report = pytester.path / "by-url.json"
    by_path.run(f"--dfqs-model={alone / name}")
    remote = by_url.run(f"--dfqs-model={served.url(name)}")
    assert statuses(by_url) == statuses(by_path)
    no_split_finding = next(f for c in by_url.certificate()["models"][0]["clauses"] for f in c["findings"] if f["check"] == "no-split")
    assert said in no_split_finding["summary"], no_split_finding
    whole = name.startswith("tiny-split")
    assert by_url.certificate()["models"][0]["remote"]["shards"] == (2 if whole else 1)
    if whole:
        remote.stdout.fnmatch_lines(["*(and 1 more shards of its set); nothing else downloaded"])
        assert no_split_finding["summary"].endswith("--dfqs-download brings it to merge")  # no dfqs-merge of header-only files


def test_what_needs_the_bytes_is_not_evaluated_by_url(served: Nginx, certify: Certification) -> None:
    result = certify.run(f"--dfqs-model={served.url('tiny-moe.gguf')}", "--dfqs-tier=runtime", f"--dfqs-sha256={'0' * 64}")
    clauses = {clause["id"]: clause for clause in certify.certificate()["models"][0]["clauses"]}
    assert clauses["DFQS-3.2"]["status"] == "NOT EVALUATED" and clauses["DFQS-AI.1"]["status"] == "NOT EVALUATED"
    assert certify.certificate()["models"][0]["verdict"] != "CONFORMANT"
    assert result.ret == 0  # INCOMPLETE exits 0 unless --dfqs-require-complete
    said = json.dumps(clauses["DFQS-3.2"]) + json.dumps(clauses["DFQS-AI.1"])
    assert f"only the header of tiny-moe.gguf is on this machine (fetched from {served.url('tiny-moe.gguf')})" in said


def test_a_url_the_server_does_not_have_is_one_line(served: Nginx, certify: Certification) -> None:
    result = certify.run(f"--dfqs-model={served.url('missing.gguf')}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --dfqs-model {served.url('missing.gguf')}: not found on the server (HTTP 404): check the URL *"])


def test_the_header_lives_in_pytests_cache_and_nothing_else_is_left(served: Nginx, certify: Certification, tmp_path: Path) -> None:
    certify.run(f"--dfqs-model={served.url('SmolLM2.gguf')}")
    cached = [p for p in (certify.pytester.path / ".pytest_cache" / "d" / "dfqs-remote").rglob("*") if p.is_file()]
    assert [p.name for p in cached] == ["SmolLM2.gguf"]
    assert cached[0].stat().st_size == (served.root / "SmolLM2.gguf").stat().st_size
    assert cached[0].stat().st_blocks * 512 < 4 << 20  # the header's blocks only
