"""--dfqs-download: the whole file in the cache, resumed after an interruption, hashed once while it streams."""

from __future__ import annotations

import hashlib
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from pytest_dfqs.remote import ranges
from pytest_dfqs.remote.download import complete_download, download
from pytest_dfqs.remote.ranges import RemoteError
from tests.conftest import Certification
from tests.servers import Misbehaving, Nginx, asked_range, send_range


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_download_by_url_runs_the_runtime_tier_and_is_hashed_once(served: Nginx, certify: Certification) -> None:
    name = "tiny-moe-4k.gguf"  # a 4,096-token context: the runtime tier without its 64K decode
    before = sum(row.sent for row in served.log() if row.path == f"/{name}")
    only = "-k=cpu_operation or artifact_integrity"  # DFQS-3.2 (a load and a generation) and DFQS-AI.1: the rest takes minutes
    digest = f"--dfqs-sha256={sha256(served.root / name)}"
    result = certify.run(f"--dfqs-model={served.url(name)}", "--dfqs-download", "--dfqs-tier=runtime", only, digest)
    model = certify.certificate()["models"][0]
    clauses = {clause["id"]: clause["status"] for clause in model["clauses"]}
    assert clauses["DFQS-3.2"] == "MET" and clauses["DFQS-AI.1"] == "MET", clauses
    sent = sum(row.sent for row in served.log() if row.path == f"/{name}") - before
    size = (served.root / name).stat().st_size
    assert size < sent <= size + min(size, 1 << 20) + 1  # the file once, besides its header and a 1-byte probe
    assert model["remote"]["sha256"] == sha256(served.root / name) and model["remote"]["received"] == size
    result.stdout.fnmatch_lines(
        [f"  header fetched: *; the whole file downloaded now (*), SHA-256 {model['remote']['sha256']} computed as it streamed"]
    )
    again = certify.run(f"--dfqs-model={served.url(name)}", "--dfqs-tier=runtime", only)  # no --dfqs-download: the earlier download is used
    assert {c["id"]: c["status"] for c in certify.certificate()["models"][0]["clauses"]}["DFQS-3.2"] == "MET"
    again.stdout.fnmatch_lines(["*the whole file downloaded by an earlier run*"])


def test_an_interrupted_download_resumes_where_it_stopped(moe_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ranges, "BACKOFF_S", 0.01)
    monkeypatch.setattr("pytest_dfqs.remote.download.DOWNLOAD_CHUNK", 64 << 10)
    data = moe_model.read_bytes()
    state = {"broken": True}
    asked: list[int] = []

    def broken_past_half(handler: BaseHTTPRequestHandler, payload: bytes) -> None:
        first, _ = asked_range(handler, len(payload))
        asked.append(first)
        send_range(handler, payload, cut=0 if state["broken"] and first >= len(payload) // 2 else None)

    destination = tmp_path / "tiny-moe.gguf"
    server = Misbehaving(data, broken_past_half)
    try:
        with pytest.raises(RemoteError, match="cut short"):
            download(server.url(), destination, len(data), lambda line: None)
        kept = destination.with_name("tiny-moe.gguf.download").stat().st_size
        assert 0 < kept < len(data) and not destination.exists()
        state["broken"], asked[:] = False, []
        done = download(server.url(), destination, len(data), lambda line: None)
    finally:
        server.stop()
    assert asked[0] == 0 and asked[1] == kept  # the probe, then the first byte not yet downloaded
    assert done.sha256 == hashlib.sha256(data).hexdigest() and destination.read_bytes() == data
    assert done.received == len(data) - kept  # only the rest was downloaded
    earlier = complete_download(destination, len(data), done.validator)
    assert earlier is not None and (earlier.path, earlier.sha256, earlier.received) == (destination, done.sha256, 0)


def test_a_download_whose_bytes_are_not_the_stated_ones_is_refused_and_removed(moe_model: Path, tmp_path: Path) -> None:
    data = moe_model.read_bytes()
    server = Misbehaving(data, lambda handler, payload: send_range(handler, payload))
    try:
        with pytest.raises(RemoteError, match=f"have SHA-256 {hashlib.sha256(data).hexdigest()}, not the {'0' * 64} the source states"):
            download(server.url(), tmp_path / "x.gguf", len(data), lambda line: None, expected_sha256="0" * 64)
    finally:
        server.stop()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.gguf.json"]  # the record of an incomplete download, no bytes


def test_a_download_the_disk_cannot_hold_stops_before_the_first_byte(moe_model: Path, tmp_path: Path) -> None:
    server = Misbehaving(moe_model.read_bytes(), lambda handler, payload: send_range(handler, payload))
    try:
        with pytest.raises(RemoteError, match=r"downloading x.gguf needs .* more in .*, which has .* free"):
            download(server.url(), tmp_path / "x.gguf", 1 << 62, lambda line: None)
    finally:
        server.stop()
    assert server.requests == 1  # the 1-byte probe only
