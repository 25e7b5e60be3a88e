"""An rpc-server that fails during a run: the infrastructure's ERROR naming it, the worker stopped, nothing left behind.

Each test starts its own two rpc-servers on the loopback and a run that places the tiny MoE on them. A plugin given
to that run (`-p fault_injection`) signals one server just before DFQS-3.3's routing-determinism test: SIGKILL (it
died) or SIGSTOP (it stalls, its port still accepting connections). DFQS-3.1 and 3.2 were decided on the placement
before; from DFQS-3.3 on every runtime check is ERROR, the certificate INCOMPLETE.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_dfqs.runtime.rpc import rpc_backend_installed
from tests.conftest import Certification, validate_certificate
from tests.rpc_servers import RpcServer, start_rpc_server
from tests.test_interrupts import interrupted_during_the_fill

pytestmark = pytest.mark.skipif(not rpc_backend_installed(), reason="llama-cpp-python without the RPC backend (.ci/llama-wheel rpc)")

FAULT_INJECTION = """
import os, signal

def pytest_runtest_setup(item):
    if "routing-determinism" in item.nodeid:
        os.kill(int(os.environ["DFQS_FAULT_PID"]), getattr(signal, os.environ["DFQS_FAULT_SIGNAL"]))
"""
REQUEST_TIMEOUT_S = 20


@pytest.fixture
def own_servers(tmp_path: Path) -> Iterator[list[RpcServer]]:
    servers = [start_rpc_server(tmp_path) for _ in range(2)]
    yield servers
    for server in servers:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGCONT)
        server.stop()


def faulty_run(
    certify: Certification, model: Path, servers: list[RpcServer], signum: signal.Signals, monkeypatch: pytest.MonkeyPatch
) -> tuple[pytest.RunResult, float]:
    """The runtime tier of `model` on `servers`, the second one signalled before routing-determinism; and its duration."""
    certify.pytester.makepyfile(fault_injection=FAULT_INJECTION)
    monkeypatch.setenv("DFQS_FAULT_PID", str(servers[1].process.pid))
    monkeypatch.setenv("DFQS_FAULT_SIGNAL", signum.name)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(certify.pytester.path), os.environ.get("PYTHONPATH", "")]))
    endpoints = ",".join(server.endpoint for server in servers)
    started = time.monotonic()
    result = certify.run(
        f"--dfqs-model={model}",
        "--dfqs-tier=runtime",
        f"--dfqs-rpc={endpoints}",
        f"--dfqs-request-timeout={REQUEST_TIMEOUT_S}",
        "-p",
        "fault_injection",
        "-p",
        "no:randomly",
    )
    return result, time.monotonic() - started


def assert_failed_on(certify: Certification, server: RpcServer, result: pytest.RunResult) -> dict[str, str]:
    """DFQS-3.3 and the runtime checks after it ERROR naming the server (INCOMPLETE: nothing about the model was
    decided by them, exit 0 unless --dfqs-require-complete); the checks' summaries."""
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    certificate = certify.certificate()
    validate_certificate(certificate)
    assert certificate["verdict"] == "INCOMPLETE" and not certificate["complete"]
    assert certify.clause("DFQS-3.2")["status"] == "MET"  # decided on the placement before the fault
    assert certify.clause("DFQS-3.3")["status"] == "ERROR"
    summaries = {f["check"]: f["summary"] for c in certificate["models"][0]["clauses"] for f in c["findings"]}
    blame = f"an rpc-server the model is placed on failed (the infrastructure, not the model): {server.endpoint} does not answer"
    assert summaries["routing-determinism"].startswith(blame), summaries["routing-determinism"]
    assert certify.clause("DFQS-3.1")["status"] == "ERROR"  # its test runs after DFQS-3.3's: the same failure, no second wait
    assert summaries["llama-cpp-executes"].startswith(f"could not run: {blame}")
    worker_pid = next(f for f in certify.clause("DFQS-3.2")["findings"] if f["check"] == "cpu-generation")["evidence"]["worker_pid"]
    assert not Path(f"/proc/{worker_pid}").exists()  # the worker waiting on the server was stopped
    return summaries


def test_a_server_killed_mid_run_is_an_error_naming_it(
    certify: Certification, runtime_moe_model: Path, own_servers: list[RpcServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    result, _ = faulty_run(certify, runtime_moe_model, own_servers, signal.SIGKILL, monkeypatch)
    summaries = assert_failed_on(certify, own_servers[1], result)
    assert "SIGABRT" in summaries["routing-determinism"]  # llama.cpp's RPC client aborts the worker: not the model's doing
    result.stdout.fnmatch_lines(["DFQS-3.3 * ERROR *an rpc-server the model is placed on failed*"])


def test_a_stalled_server_ends_the_checks_within_the_request_timeout(
    certify: Certification, runtime_moe_model: Path, own_servers: list[RpcServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    result, took = faulty_run(certify, runtime_moe_model, own_servers, signal.SIGSTOP, monkeypatch)
    summaries = assert_failed_on(certify, own_servers[1], result)
    assert f"gave no answer to 'evaluate' within {REQUEST_TIMEOUT_S} s (--dfqs-request-timeout)" in summaries["routing-determinism"]
    print(f"a stalled rpc-server: the run ended {took:.1f} s after it started (request timeout {REQUEST_TIMEOUT_S} s)")
    assert took < 3 * REQUEST_TIMEOUT_S  # one wait for the stalled request, one HELLO probe; no check waits again


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds leftover processes through /proc")
def test_ctrl_c_over_rpc_stops_the_run_within_seconds(moe_model: Path, tmp_path: Path, own_servers: list[RpcServer]) -> None:
    endpoints = ",".join(server.endpoint for server in own_servers)
    interrupted_during_the_fill(moe_model, tmp_path, signal.SIGINT, f"--dfqs-rpc={endpoints}")
    assert all(server.process.poll() is None for server in own_servers)  # the servers serve on: they are the user's
