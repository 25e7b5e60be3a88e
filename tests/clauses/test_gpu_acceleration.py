"""DFQS-3.6: the offloaded-vs-CPU comparison. This machine has no GPU: an offloaded load runs on the CPU
here, which exercises the whole path (a second worker, n_gpu_layers = -1) and must agree exactly."""

from __future__ import annotations

from pathlib import Path

from pytest_dfqs.clauses.gpu_acceleration import check_gpu_offload, compare_offloaded, offload_finding
from pytest_dfqs.model import ModelUnderTest
from pytest_dfqs.runtime.client import GENERATION_PROMPT
from pytest_dfqs.runtime.rpc import rpc_backend_installed
from pytest_dfqs.verdict import Status
from tests.machine_speed import llama_threads


def test_without_a_gpu_backend_the_clause_is_not_applicable(runtime_moe_model: Path) -> None:
    model = ModelUnderTest(runtime_moe_model, "tiny", threads=llama_threads())
    try:
        finding = check_gpu_offload(model)
    finally:
        model.close()
    expected = (
        "this llama.cpp build can offload (its RPC backend, to rpc-servers: --dfqs-rpc), but no GPU device is present"
        if rpc_backend_installed()  # .ci/run installs the RPC build: it offloads, but to no GPU
        else "this llama.cpp build has no GPU backend (llama_supports_gpu_offload() is false): CPU only"
    )
    assert finding.status == Status.NOT_APPLICABLE and finding.summary == expected


def test_offloaded_run_is_compared_with_the_cpu_run(runtime_moe_model: Path) -> None:
    model = ModelUnderTest(runtime_moe_model, "tiny", threads=llama_threads())
    try:
        same = compare_offloaded(model)
        other = model.runtime().generate("a different prompt entirely", 32)
        cpu = model.runtime().generate(GENERATION_PROMPT, 32)
    finally:
        model.close()
    assert same.status == Status.MET and same.evidence["agreeing_prefix"] == 32
    differing = offload_finding(cpu, other, ["GPU: test"])
    assert differing.status == Status.NOT_MET and "differ from the CPU's at step" in differing.summary
