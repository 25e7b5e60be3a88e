"""The range reader and the header fetch against servers that misbehave on purpose: one clear line each, in time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from fnmatch import fnmatch
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from pytest_dfqs.remote import ranges
from pytest_dfqs.remote.header_fetch import fetch_header
from pytest_dfqs.remote.ranges import RangeReader, RemoteError
from tests.servers import Behaviour, Misbehaving, asked_range, send_range

CHUNK = 4096
DEADLINE_S = 3.0
REQUEST_TIMEOUT_S = 0.5


def ignores_range(handler: BaseHTTPRequestHandler, data: bytes) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def changes_etag(handler: BaseHTTPRequestHandler, data: bytes) -> None:
    first, _ = asked_range(handler, len(data))
    send_range(handler, data, etag='"v1"' if first == 0 else '"v2"')


def changes_size(handler: BaseHTTPRequestHandler, data: bytes) -> None:
    first, _ = asked_range(handler, len(data))
    send_range(handler, data, size=len(data) if first == 0 else len(data) + 1)


def truncates(handler: BaseHTTPRequestHandler, data: bytes) -> None:
    send_range(handler, data, cut=100)


def redirects_in_a_loop(handler: BaseHTTPRequestHandler, data: bytes) -> None:
    handler.send_response(302)
    handler.send_header("Location", "/b.gguf" if handler.path.endswith("/a.gguf") or handler.path == "/model.gguf" else "/a.gguf")
    handler.send_header("Content-Length", "0")
    handler.end_headers()


def drips(handler: BaseHTTPRequestHandler, data: bytes) -> None:
    first, last = asked_range(handler, len(data))
    handler.send_response(206)
    handler.send_header("Content-Range", f"bytes {first}-{last}/{len(data)}")
    handler.send_header("Content-Length", str(last - first + 1))
    handler.end_headers()
    for byte in data[first : last + 1]:
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()
        time.sleep(0.05)


def stays_silent(handler: BaseHTTPRequestHandler, data: bytes) -> None:
    time.sleep(DEADLINE_S + 2)


def status(code: int) -> Behaviour:
    def answer(handler: BaseHTTPRequestHandler, data: bytes) -> None:
        handler.send_response(code)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return answer


def wrong_content_range(handler: BaseHTTPRequestHandler, data: bytes) -> None:
    handler.send_response(206)
    handler.send_header("Content-Range", f"bytes 10-19/{len(data)}")
    handler.send_header("Content-Length", "10")
    handler.end_headers()
    handler.wfile.write(data[10:20])


HOSTILE = {
    "ignores Range": (ignores_range, "the server ignores Range requests (it answers 200 with the whole file): *use --dfqs-download"),
    "changes its ETag": (changes_etag, 'the file changed on the server while its header was read (its ETag was "v1", now "v2"): run again'),
    "changes its size": (changes_size, "the file changed on the server while its header was read (its size was * bytes, now *): run again"),
    "cuts answers short": (truncates, "the server closed the connection 100 bytes into an answer of 4,096 (cut short) (4 attempts)"),
    "redirects in a loop": (redirects_in_a_loop, "the server redirects in a loop (back to http://127.0.0.1:*/b.gguf): *"),
    "drips bytes": (drips, "the server sent * of 4.10 kB in 0.5 s (too slow) (4 attempts)"),
    "never answers": (stays_silent, "127.0.0.1:* did not answer (no complete answer within 0.5 s) (4 attempts)"),
    "needs a token (401)": (status(401), "the server refuses access (HTTP 401 Unauthorized): the plugin sends no credentials*"),
    "forbids (403)": (status(403), "the server refuses access (HTTP 403 Forbidden): *"),
    "has no such file (404)": (status(404), "not found on the server (HTTP 404): check the URL http://127.0.0.1:*/model.gguf"),
    "keeps failing (503)": (status(503), "the server failed (HTTP 503 Service Unavailable) (4 attempts)"),
    "sends other bytes": (wrong_content_range, "the server sent 'bytes 10-19/*' when asked for bytes=0-4095: not the bytes asked for"),
}


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries 20 times sooner than for real servers: the same attempts, seconds less per hostile server."""
    monkeypatch.setattr(ranges, "BACKOFF_S", 0.025)


@pytest.fixture
def model_bytes(moe_model: Path) -> bytes:
    return moe_model.read_bytes()


@pytest.fixture(params=list(HOSTILE), ids=list(HOSTILE))
def hostile(request: pytest.FixtureRequest, model_bytes: bytes) -> Iterator[tuple[Misbehaving, str]]:
    behaviour, message = HOSTILE[request.param]
    server = Misbehaving(model_bytes, behaviour)
    yield server, message
    server.stop()


def test_every_hostile_server_ends_in_one_clear_line_within_its_limit(hostile: tuple[Misbehaving, str], tmp_path: Path) -> None:
    server, message = hostile
    started = time.monotonic()
    reader = RangeReader(server.url(), time.monotonic() + DEADLINE_S, request_timeout=REQUEST_TIMEOUT_S)
    with pytest.raises(RemoteError) as refused:
        fetch_header(reader, tmp_path / "cache" / "model.gguf", chunk=CHUNK)
    took = time.monotonic() - started
    text = str(refused.value)
    assert "\n" not in text and "Traceback" not in text
    assert fnmatch(text, message), text
    assert took < DEADLINE_S + 1.5, f"{took:.1f} s: {text}"
    assert list((tmp_path / "cache").iterdir()) == []  # nothing left behind, not even the partial file


def test_a_well_behaved_server_costs_the_header_and_one_chunk_at_most(moe_model: Path, model_bytes: bytes, tmp_path: Path) -> None:
    from pytest_dfqs.modelfile.header import read_header

    server = Misbehaving(model_bytes, lambda handler, data: send_range(handler, data))
    try:
        reader = RangeReader(server.url(), time.monotonic() + 30)
        fetched = fetch_header(reader, tmp_path / "model.gguf", chunk=CHUNK)
    finally:
        server.stop()
    local, remote = read_header(moe_model), read_header(fetched.path)
    assert fetched.size == len(model_bytes) == fetched.path.stat().st_size
    assert remote.metadata == local.metadata and remote.tensors == local.tensors and remote.data_offset == local.data_offset
    assert local.data_offset <= fetched.fetched <= local.data_offset + CHUNK
    assert fetched.requests == -(-fetched.fetched // CHUNK)
    assert fetched.path.stat().st_blocks * 512 < len(model_bytes)  # a hole where the tensor data is
