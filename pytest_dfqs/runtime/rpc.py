"""llama.cpp's RPC engine as the suite reaches it: endpoints named, probed and described before any work.

An endpoint is HOST:PORT of an `rpc-server` (llama.cpp's, or `python -m pytest_dfqs.runtime.rpc_server` from the same
installed libraries). Before the worker loads anything, each endpoint is asked the protocol's own HELLO (command 14:
the request is the client's 24 bytes of transport capabilities, the answer the server's major, minor and patch
version and its capabilities); one that does not answer, or answers with another major version than the installed
llama.cpp's (7 in llama-cpp-python 0.3.36), is refused naming it.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import math
import re
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HELLO = 14
CAPS_SIZE = 24  # RPC_CONN_CAPS_SIZE of the vendored transport.h
PROTOCOL_MAJOR, PROTOCOL_MINOR = 7, 0  # the vendored ggml-rpc.h's RPC_PROTO_MAJOR_VERSION and MINOR
LOOPBACK = ("127.0.0.1", "::1", "localhost")
ALL_LAYERS = 999  # n_gpu_layers that puts every layer but the input layer on the devices given (the rpc-servers')


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
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    """The host is this machine by its loopback interface (127.0.0.0/8, ::1, localhost)."""
    try:
        return host in LOOPBACK or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Placement:
    """Where the runtime puts a model's layers: this machine's CPU alone (no endpoints), or llama.cpp rpc-servers.

    `split` gives each endpoint its share of the layers, in order, and may give one more: this machine's CPU's, which
    then keeps the first layers (llama.cpp puts the last n_gpu_layers on the devices); without a split llama.cpp
    shares the layers among the servers by their free memory and keeps only the input layer here.
    """

    endpoints: tuple[str, ...] = ()
    split: tuple[float, ...] = ()
    n_layer: int | None = None  # the model's repeating layers (its block_count), which the CPU's share is counted in

    @property
    def local_share(self) -> float:
        return self.split[-1] / sum(self.split) if len(self.split) == len(self.endpoints) + 1 else 0.0

    def offloaded_layers(self) -> int:
        """n_gpu_layers: the layers (repeating ones and the output layer) on the servers' devices; the rest stay here."""
        if not self.local_share or self.n_layer is None:
            return ALL_LAYERS
        layers = self.n_layer + 1
        return min(max(round(layers * (1 - self.local_share)), 1), layers - 1)

    def worker_args(self) -> dict[str, Any] | None:
        """What the worker's loads are told: None for this machine's CPU alone."""
        if not self.endpoints:
            return None
        return {"rpc": list(self.endpoints), "split": list(self.split[: len(self.endpoints)]), "offloaded": self.offloaded_layers()}

    def describe(self) -> str:
        where = ", ".join(self.endpoints)
        if not self.split:
            return f"the layers on the rpc-servers {where}, shared by their free memory (the input layer stays here)"
        shares = ":".join(f"{share:g}" for share in self.split[: len(self.endpoints)])
        here = f", this machine's CPU keeping {self.local_share:.0%} of them" if self.local_share else ""
        return f"the layers on the rpc-servers {where}, shared {shares}{here}"

    def remote_endpoints(self) -> list[str]:
        return [endpoint for endpoint in self.endpoints if not is_loopback(endpoint.rpartition(":")[0])]

    def record(self) -> dict[str, Any]:
        return {"endpoints": list(self.endpoints), "tensor_split": list(self.split) or None, "cpu_share": self.local_share}


def parse_split(text: str, endpoints: int) -> tuple[float, ...]:
    """One non-negative share per endpoint, then optionally one for this machine's CPU; a server's share above 0."""
    try:
        shares = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise RpcEndpointError(f"{text!r} is not a list of numbers, such as 3,1 or 1,1,2") from None
    if len(shares) not in (endpoints, endpoints + 1):
        raise RpcEndpointError(
            f"{text!r} gives {len(shares)} shares for {endpoints} rpc-server(s): one per server, in --dfqs-rpc's order,"
            " and optionally one more for this machine's CPU"
        )
    if not all(math.isfinite(share) and share >= 0 for share in shares) or not sum(shares[:endpoints]) > 0:
        raise RpcEndpointError(f"{text!r}: shares are numbers >= 0 and the rpc-servers' are not all 0")
    return shares


RPC_LIBRARY = "libggml-rpc.so"
HERE = "this machine"
LAYER_ASSIGNED = re.compile(r"layer +(?P<layer>\d+) assigned to device (?P<device>[^,\s]+)")


def layers_per_device(lines: list[str], devices: list[dict[str, Any]]) -> dict[str, int]:
    """How many layers (the output layer counted as one) llama.cpp's load assigned to each rpc-server and to this
    machine, from its own log lines ("load_tensors: layer 3 assigned to device RPC1")."""
    endpoints = {device["name"]: device["endpoint"] for device in devices}
    placed = {int(match["layer"]): endpoints.get(match["device"], HERE) for line in lines if (match := LAYER_ASSIGNED.search(line))}
    return {where: list(placed.values()).count(where) for where in dict.fromkeys([HERE, *endpoints.values()])}


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
