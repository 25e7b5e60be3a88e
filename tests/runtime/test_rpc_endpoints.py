"""RPC endpoints: named HOST:PORT, and asked the protocol's own HELLO before any work (real rpc-servers on the loopback)."""

from __future__ import annotations

import os
import socket
import struct
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_dfqs.runtime.rpc import CAPS_SIZE, HELLO, PROTOCOL_MAJOR, RPC_LIBRARY, Endpoint, RpcEndpointError, hello, parse_endpoints
from pytest_dfqs.runtime.rpc import rpc_backend_installed as rpc_available
from tests.rpc_servers import RpcServer, free_port

needs_rpc = pytest.mark.skipif(not rpc_available(), reason="llama-cpp-python without the RPC backend (.ci/llama-wheel rpc builds one)")


def test_endpoints_are_host_and_port_each_once() -> None:
    assert parse_endpoints("127.0.0.1:50052, 10.0.0.2:50053") == (Endpoint("127.0.0.1", 50052), Endpoint("10.0.0.2", 50053))
    assert [e.loopback for e in parse_endpoints("127.0.0.1:1,192.168.1.5:2,[::1]:3")] == [True, False, True]
    for bad, said in (("127.0.0.1", "is not HOST:PORT"), ("host:0", "is not HOST:PORT"), ("a:1,a:1", "a:1 given twice")):
        with pytest.raises(RpcEndpointError, match=said):
            parse_endpoints(bad)


@needs_rpc
def test_a_real_rpc_server_answers_hello_with_the_installed_protocol(rpc_servers: list[RpcServer]) -> None:
    for server in rpc_servers:
        assert hello(parse_endpoints(server.endpoint)[0], timeout=5)[0] == PROTOCOL_MAJOR
    assert all(server.process.poll() is None for server in rpc_servers)  # the probe leaves the server serving


def test_a_closed_port_is_named() -> None:
    endpoint = Endpoint("127.0.0.1", free_port())
    with pytest.raises(RpcEndpointError, match=rf"^127\.0\.0\.1:{endpoint.port} does not answer \(.*\): is rpc-server running there\?$"):
        hello(endpoint, timeout=2)


def _answering(reply: bytes) -> Iterator[Endpoint]:
    """A loopback peer that reads a HELLO and answers `reply`: what a server of another protocol, or no rpc-server, says."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        connection, _ = listener.accept()
        with connection:
            request = connection.recv(1 + 8 + CAPS_SIZE)
            assert request[:9] == struct.pack("<BQ", HELLO, CAPS_SIZE)
            connection.sendall(reply)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield Endpoint("127.0.0.1", listener.getsockname()[1])
    thread.join(5)
    listener.close()


def test_another_protocol_version_is_refused_naming_both() -> None:
    reply = struct.pack("<Q", 4 + CAPS_SIZE) + bytes([PROTOCOL_MAJOR - 1, 3, 1, 0]) + bytes(CAPS_SIZE)
    for endpoint in _answering(reply):
        with pytest.raises(RpcEndpointError, match=rf"speaks RPC protocol {PROTOCOL_MAJOR - 1}\.3\.1; the installed llama\.cpp speaks"):
            hello(endpoint, timeout=2)


def test_a_server_that_is_not_an_rpc_server_is_refused(tmp_path: Path) -> None:
    for endpoint in _answering(b"HTTP/1.1 400 Bad Request\r\n\r\n"):
        with pytest.raises(RpcEndpointError, match="answers HELLO with .* bytes, not an rpc-server of protocol 7.x"):
            hello(endpoint, timeout=2)


def default_wheel() -> Path | None:
    """llama-cpp-python's default build (no RPC backend), as .ci/llama-wheel built it or pip cached it when it compiled
    it; None if neither did."""
    houses = os.environ.get("DFQS_WHEELHOUSE", Path.home() / ".cache" / "pytest-dfqs" / "llama-wheels")
    cache = Path(os.environ.get("PIP_CACHE_DIR", Path.home() / ".cache" / "pip")) / "wheels"
    built = sorted(Path(houses).glob("*-default/llama_cpp_python-*.whl"))
    for wheel in built + sorted(cache.glob("**/llama_cpp_python-*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            if not any(name.endswith(RPC_LIBRARY) for name in archive.namelist()):
                return wheel
    return None


DEFAULT_WHEEL = default_wheel()  # found now: pytester moves HOME


@pytest.mark.skipif(DEFAULT_WHEEL is None, reason="no default llama-cpp-python wheel built (.ci/llama-wheel default) or in pip's cache")
def test_a_build_without_the_rpc_backend_is_a_usage_error_saying_how_to_get_one(
    pytester: pytest.Pytester, runtime_moe_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default wheel (what `pip install llama-cpp-python` builds), unpacked and put first on the path."""
    assert DEFAULT_WHEEL is not None
    unpacked = pytester.path / "default-build"
    with zipfile.ZipFile(DEFAULT_WHEEL) as archive:
        archive.extractall(unpacked)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(unpacked), os.environ.get("PYTHONPATH", "")]))
    result = pytester.runpytest_subprocess(f"--dfqs-model={runtime_moe_model}", "--dfqs-tier=runtime", "--dfqs-rpc=127.0.0.1:50052")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ['ERROR: --dfqs-rpc: this llama-cpp-python has no RPC backend: reinstall it built with it, CMAKE_ARGS="-DGGML_RPC=on" *']
    )
