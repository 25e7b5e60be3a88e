"""The runtime tier on llama.cpp's RPC engine: the model placed on two real rpc-servers on the loopback.

A golden trace recorded on this machine's CPU verifies over RPC (the same expert ids, row for row), the certificate
names the placement, and endpoints that cannot serve are usage errors before any work.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_dfqs.runtime.rpc import rpc_backend_installed
from tests.conftest import Certification, validate_certificate
from tests.rpc_servers import RpcServer, free_port

pytestmark = pytest.mark.skipif(not rpc_backend_installed(), reason="llama-cpp-python without the RPC backend (.ci/rpc-wheel)")


def test_a_local_golden_trace_verifies_on_two_rpc_servers(
    certify: Certification, runtime_moe_model: Path, rpc_servers: list[RpcServer], pytester: pytest.Pytester
) -> None:
    trace = pytester.path / "golden.json"
    local = certify.run(f"--dfqs-model={runtime_moe_model}", "--dfqs-tier=runtime", f"--dfqs-trace-record={trace}", "-k", "DFQS-3.3")
    assert local.ret == 0 and trace.is_file()
    endpoints = ",".join(server.endpoint for server in rpc_servers)
    placed = certify.run(f"--dfqs-model={runtime_moe_model}", "--dfqs-tier=runtime", f"--dfqs-rpc={endpoints}", f"--dfqs-trace={trace}")
    assert placed.ret == 0, placed.stdout.str()
    certificate = certify.certificate()
    validate_certificate(certificate)
    assert certificate["models"][0]["runtime"]["rpc"] == [server.endpoint for server in rpc_servers]
    routing = {f["check"]: f for f in certify.clause("DFQS-3.3")["findings"]}
    assert routing["routing-trace"]["status"] == "MET" and certify.clause("DFQS-3.3")["status"] == "MET"
    assert all(certify.clause(clause)["status"] == "MET" for clause in ("DFQS-3.1", "DFQS-3.2", "DFQS-3.4"))
    for server in rpc_servers:  # each held part of the model: llama.cpp's client connected to it
        assert "Accepted client connection" in server.log.read_text()


def test_an_endpoint_that_does_not_answer_is_a_usage_error(certify: Certification, runtime_moe_model: Path) -> None:
    silent = f"127.0.0.1:{free_port()}"
    result = certify.run(f"--dfqs-model={runtime_moe_model}", "--dfqs-tier=runtime", f"--dfqs-rpc={silent}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --dfqs-rpc: {silent} does not answer (*): is rpc-server running there?"])
