"""Fixtures of the runtime tests: two llama.cpp rpc-servers on the loopback, shared by the RPC tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.rpc_servers import RpcServer, start_rpc_server


@pytest.fixture(scope="session")
def rpc_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RpcServer]]:
    folder = tmp_path_factory.mktemp("rpc")
    servers = [start_rpc_server(folder) for _ in range(2)]
    yield servers
    for server in servers:
        server.stop()
