"""llama.cpp's RPC engine as the suite reaches it: endpoints named, probed and described before any work.

An endpoint is HOST:PORT of an `rpc-server` (llama.cpp's, or `python -m pytest_dfqs.runtime.rpc_server` from the same
installed libraries). Before the worker loads anything, each endpoint is asked the protocol's own HELLO (command 14:
the request is the client's 24 bytes of transport capabilities, the answer the server's major, minor and patch
version and its capabilities); one that does not answer, or answers with another major version than the installed
llama.cpp's (7 in llama-cpp-python 0.3.36), is refused naming it.
"""

from __future__ import annotations

import importlib.util
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

HELLO = 14
CAPS_SIZE = 24  # RPC_CONN_CAPS_SIZE of the vendored transport.h
PROTOCOL_MAJOR, PROTOCOL_MINOR = 7, 0  # the vendored ggml-rpc.h's RPC_PROTO_MAJOR_VERSION and MINOR
LOOPBACK = ("127.0.0.1", "::1", "localhost")


class RpcEndpointError(Exception):
    """An endpoint the suite cannot use: malformed, silent, or of another protocol."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def loopback(self) -> bool:
        return self.host in LOOPBACK


RPC_LIBRARY = "libggml-rpc.so"


def llama_cpp_libraries() -> Path | None:
    """The folder of the installed llama-cpp-python's shared libraries, found without importing it; None when not installed."""
    spec = importlib.util.find_spec("llama_cpp")
    return Path(spec.origin).parent / "lib" if spec is not None and spec.origin is not None else None


def rpc_backend_installed() -> bool:
    """The installed llama-cpp-python ships llama.cpp's RPC backend (`libggml-rpc.so`, an RPC build)."""
    folder = llama_cpp_libraries()
    return folder is not None and (folder / RPC_LIBRARY).is_file()


def parse_endpoints(text: str) -> tuple[Endpoint, ...]:
    """HOST:PORT[,HOST:PORT...], each once."""
    endpoints = []
    for part in (piece.strip() for piece in text.split(",")):
        host, colon, port = part.rpartition(":")
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise RpcEndpointError(f"{part!r} is not HOST:PORT (an rpc-server's address, such as 127.0.0.1:50052)")
        endpoints.append(Endpoint(host.strip("[]"), int(port)))
    repeated = sorted({str(e) for e in endpoints if endpoints.count(e) > 1})
    if repeated:
        raise RpcEndpointError(f"{', '.join(repeated)} given twice: each rpc-server once")
    return tuple(endpoints)


def hello(endpoint: Endpoint, timeout: float) -> tuple[int, int, int]:
    """The server's protocol version, by the protocol's own handshake; RpcEndpointError if it does not answer as one."""
    try:
        with socket.create_connection((endpoint.host, endpoint.port), timeout=timeout) as connection:
            connection.sendall(struct.pack("<BQ", HELLO, CAPS_SIZE) + bytes(CAPS_SIZE))
            size = struct.unpack("<Q", _receive(connection, 8))[0]
            if size != 4 + CAPS_SIZE:
                raise RpcEndpointError(f"{endpoint} answers HELLO with {size} bytes, not an rpc-server of protocol {PROTOCOL_MAJOR}.x")
            major, minor, patch = _receive(connection, size)[:3]
    except OSError as error:
        raise RpcEndpointError(f"{endpoint} does not answer ({error.strerror or error}): is rpc-server running there?") from None
    if major != PROTOCOL_MAJOR or minor > PROTOCOL_MINOR:
        raise RpcEndpointError(
            f"{endpoint} speaks RPC protocol {major}.{minor}.{patch}; the installed llama.cpp speaks {PROTOCOL_MAJOR}.{PROTOCOL_MINOR}:"
            " start rpc-server from the same llama.cpp (python -m pytest_dfqs.runtime.rpc_server)"
        )
    return major, minor, patch


def _receive(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise ConnectionResetError("the connection closed before the answer was whole")
        data += chunk
    return data
