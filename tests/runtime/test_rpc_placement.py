"""The runtime tier on llama.cpp's RPC engine: the model placed on two real rpc-servers on the loopback.

Each model's runtime tier over RPC is decided like its local run, with the expert ids of every traced row equal to
this machine's (DFQS-3.3's placement load); a golden trace recorded on this machine's CPU verifies over RPC; a split
puts layers on both servers and this machine, and what each server allocates is what the preflight planned for it;
a model the servers cannot hold is NOT EVALUATED with per-node figures; bad endpoints and splits are usage errors
before any work.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_dfqs.clauses.routing_determinism import PLACEMENT_LOAD
from pytest_dfqs.evaluation.record import record_problems
from pytest_dfqs.modelfile.facts import model_facts
from pytest_dfqs.modelfile.header import read_header
from pytest_dfqs.runtime.preflight import MARGIN_SHARE
from pytest_dfqs.runtime.rpc import HERE, rpc_backend_installed
from tests.conftest import Certification, validate_certificate
from tests.deepseek_sized import deepseek_sized_header, write_sparse
from tests.rpc_servers import RpcServer, free_port, start_rpc_server

pytestmark = pytest.mark.skipif(not rpc_backend_installed(), reason="llama-cpp-python without the RPC backend (.ci/llama-wheel rpc)")
PLANNED_WITHIN = 0.15  # what a server allocates against the preflight's figure for it


def statuses(certificate: dict[str, Any]) -> dict[str, str]:
    return {clause["id"]: clause["status"] for clause in certificate["models"][0]["clauses"]}


def endpoints_of(servers: list[RpcServer]) -> str:
    return ",".join(server.endpoint for server in servers)


@pytest.mark.parametrize("fixture", ["runtime_moe_model", "deepseek4_model", "smollm2"])
def test_the_runtime_tier_over_rpc_is_decided_like_the_local_run(
    certify: Certification, fixture: str, rpc_servers: list[RpcServer], request: pytest.FixtureRequest
) -> None:
    model: Path = request.getfixturevalue(fixture)
    local = certify.run(f"--dfqs-model={model}", "--dfqs-tier=runtime")
    here = statuses(certify.certificate())
    placed = certify.run(f"--dfqs-model={model}", "--dfqs-tier=runtime", f"--dfqs-rpc={endpoints_of(rpc_servers)}")
    assert placed.ret == local.ret, placed.stdout.str()
    certificate = certify.certificate()
    validate_certificate(certificate)
    assert statuses(certificate) == here
    placement = certificate["models"][0]["runtime"]["placement"]
    assert placement["endpoints"] == [server.endpoint for server in rpc_servers] and placement["tensor_split"] is None
    assert all(placement["layers"][server.endpoint] > 0 for server in rpc_servers) and placement["layers"][HERE] == 0
    routing = {f["check"]: f for f in certify.clause("DFQS-3.3")["findings"]}["routing-determinism"]
    if routing["status"] == "NOT APPLICABLE":  # SmolLM2 is dense
        assert "not a Mixture-of-Experts model" in routing["summary"]
        return
    evidence = routing["evidence"]
    placement_divergences = [d for d in evidence["divergences"] if d["load"] == PLACEMENT_LOAD.name]
    assert len(placement_divergences) == evidence["divergences_per_load"][PLACEMENT_LOAD.name]  # all listed (at most 10)
    # the same expert ids on every row both placements fed; the tiny deepseek4's random weights leave one greedy
    # token at a tie (top-2 gap 2e-5), which the n_batch loads meet too: there the two runs' inputs part
    assert all(d["layer"] is None and d["tolerated"] for d in placement_divergences), placement_divergences
    assert evidence["local_placement_not_compared"] is None and evidence["token_rows_compared"] > 0
    assert PLACEMENT_LOAD.name in routing["summary"]


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


def vm_peak(server: RpcServer) -> int:
    """The server's peak virtual memory, in bytes: what it allocated at most (resident or not)."""
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmPeak:")).split()[1]) * 1024


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the servers' memory from /proc")
def test_a_split_places_layers_on_both_servers_and_here_as_the_preflight_planned(
    certify: Certification, smollm2: Path, tmp_path: Path
) -> None:
    servers = [start_rpc_server(tmp_path) for _ in range(2)]
    try:
        before = [vm_peak(server) for server in servers]
        result = certify.run(
            f"--dfqs-model={smollm2}", "--dfqs-tier=runtime", f"--dfqs-rpc={endpoints_of(servers)}", "--dfqs-tensor-split=1,1,1"
        )
        allocated = [vm_peak(server) - start for server, start in zip(servers, before)]
    finally:
        for server in servers:
            server.stop()
    assert result.ret == 0, result.stdout.str()
    placement = certify.certificate()["models"][0]["runtime"]["placement"]
    assert placement["tensor_split"] == [1, 1, 1] and placement["cpu_share"] == pytest.approx(1 / 3)
    layers = placement["layers"]
    assert sum(layers.values()) == 31 and all(count in (10, 11) for count in layers.values())  # 30 blocks and the output layer
    for server, planned, peak in zip(servers, placement["planned"], allocated):
        assert planned["endpoint"] == server.endpoint
        measured = planned["needs_bytes"] / (1 + MARGIN_SHARE)
        print(f"{server.endpoint}: planned {measured / 2**20:.1f} MiB, allocated at most {peak / 2**20:.1f} MiB")
        assert abs(peak - measured) <= PLANNED_WITHIN * measured
    assert certify.clause("DFQS-3.2")["status"] == "MET"
    listed = ", ".join(server.endpoint for server in servers)
    result.stdout.fnmatch_lines([f"dfqs: rpc: the layers on the rpc-servers {listed}, shared 1:1, this machine's CPU keeping 33% of them"])


def test_a_model_the_servers_cannot_hold_is_not_evaluated_with_each_nodes_figures(
    certify: Certification, rpc_servers: list[RpcServer], tmp_path: Path
) -> None:
    """DeepSeek-V4-Flash's shape and size (a sparse file): its header is judged, no byte of weights is sent anywhere."""
    model = write_sparse(tmp_path / "ds4-sized.gguf", deepseek_sized_header())
    result = certify.run(f"--dfqs-model={model}", "--dfqs-tier=runtime", f"--dfqs-rpc={endpoints_of(rpc_servers)}")
    assert result.ret == 0, result.stdout.str()
    cpu = certify.clause("DFQS-3.2")
    assert cpu["status"] == "NOT EVALUATED"
    nodes = cpu["reason"].split("this machine needs about ")[1]
    for server in rpc_servers:  # on the loopback: the servers share this machine's memory, so their parts add up here
        assert f"node {server.endpoint} " in nodes
    assert "on the loopback)" in cpu["reason"] and cpu["reason"].endswith("or share the layers otherwise (--dfqs-tensor-split)")
    preflight = next(f for f in cpu["findings"] if f["status"] == "NOT EVALUATED")["evidence"]["memory_preflight"]
    assert [node["endpoint"] for node in preflight["nodes"]] == [server.endpoint for server in rpc_servers]
    assert sum(node["weights_bytes"] for node in preflight["nodes"]) + preflight["weights_bytes"] > 55 * 10**9
    assert certify.certificate()["models"][0]["runtime"]["loads"] == 0


@pytest.mark.parametrize(
    ("split", "complaint"),
    [
        (
            "1",
            "'1' gives 1 shares for 2 rpc-server(s): one per server, in --dfqs-rpc's order, and optionally one more for this machine's CPU",
        ),
        ("0,0,1", "'0,0,1': shares are numbers >= 0 and the rpc-servers' are not all 0"),
        ("a,b", "'a,b' is not a list of numbers, such as 3,1 or 1,1,2"),
    ],
)
def test_a_split_that_does_not_fit_the_endpoints_is_a_usage_error(
    certify: Certification, runtime_moe_model: Path, rpc_servers: list[RpcServer], split: str, complaint: str
) -> None:
    result = certify.run(
        f"--dfqs-model={runtime_moe_model}",
        "--dfqs-tier=runtime",
        f"--dfqs-rpc={endpoints_of(rpc_servers)}",
        f"--dfqs-tensor-split={split}",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --dfqs-tensor-split: {complaint}"])


def test_a_split_without_rpc_servers_is_a_usage_error(certify: Certification, runtime_moe_model: Path) -> None:
    result = certify.run(f"--dfqs-model={runtime_moe_model}", "--dfqs-tensor-split=1,1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --dfqs-tensor-split: shares the layers among rpc-servers, and no --dfqs-rpc names one"])


@pytest.mark.timeout(1800)
def test_a_quick_evaluation_over_rpc_reports_the_five_metrics_and_the_placement(
    certify: Certification, runtime_moe_model: Path, rpc_servers: list[RpcServer], tmp_path: Path
) -> None:
    """The tiny MoE: every layer and the output on the two rpc-servers, the eval tier's whole quick budget."""
    record_path = tmp_path / "tiny-moe-rpc.json"
    endpoints = endpoints_of(rpc_servers)
    result = certify.run(
        f"--dfqs-model={runtime_moe_model}",
        "--dfqs-tier=eval",
        "--dfqs-eval-budget=quick",
        f"--dfqs-rpc={endpoints}",
        f"--dfqs-metrics={record_path}",
    )
    assert result.ret == 0, result.stdout.str()
    record = json.loads(record_path.read_text())
    assert record_problems(record) == []
    assert all(isinstance(record[name], float) for name in ("reasoning_score", "code_score", "cpu_tokens_per_sec"))
    assert isinstance(record["failure_boundary_tokens"], int) and record["context_stability_curve"][0] == 1.0
    conditions = record["conditions"]
    assert conditions["backend"] == "RPC" and conditions["placement"]["endpoints"] == endpoints.split(",")
    assert [device["endpoint"] for device in conditions["placement"]["devices"]] == endpoints.split(",")
    layers = model_facts(read_header(runtime_moe_model)).block_count + 1  # and the output layer
    assert sum(conditions["placement"]["layers"].values()) == layers and "free_bytes" not in conditions["placement"]["devices"][0]
    assert certify.clause("DFQS-11.1")["status"] == "MET"
