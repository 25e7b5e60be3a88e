"""llama.cpp's RPC engine against this machine's CPU alone, in one session: what placing a model on rpc-servers costs.

- decode throughput of SmolLM2 on two loopback rpc-servers against the local run (each generated token is a graph
  sent to both servers and computed there, then its logits read back);
- the routing trace's overhead on the tiny deepseek4 (a traced run against the same run untraced), over RPC against
  locally: over RPC every MoE layer's selected experts and scores are a GET_TENSOR round trip.

The servers run on this machine, so the figures are the protocol's cost without a network's; the floors asserted are
loose (the 2-core VM's noise), the ratios are what the benchmark reports.

Run with: pytest benchmarks/test_rpc_speed.py -m benchmark -s
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.measure import best_of
from pytest_dfqs.runtime.client import GENERATION_PROMPT, ModelRuntime, RuntimeOptions, throughput
from pytest_dfqs.runtime.rpc import Placement, rpc_backend_installed
from pytest_dfqs.runtime.traces import ROUTING_PROMPTS
from tests.rpc_servers import RpcServer, start_rpc_server
from tests.tiny_deepseek4 import write_tiny_deepseek4

pytestmark = [
    pytest.mark.benchmark,
    pytest.mark.skipif(not rpc_backend_installed(), reason="llama-cpp-python without the RPC backend (.ci/llama-wheel rpc)"),
]
ROUNDS = 3
DECODED = 64
TRACED = 16


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RpcServer]]:
    folder = tmp_path_factory.mktemp("rpc-speed")
    started = [start_rpc_server(folder, threads=2) for _ in range(2)]
    yield started
    for server in started:
        server.stop()


def runtimes(path: Path, servers: list[RpcServer], ctx: int) -> tuple[ModelRuntime, ModelRuntime]:
    """The model on this machine's CPU and on the servers, both loaded."""
    local = ModelRuntime(path, RuntimeOptions(threads=2, ctx=ctx))
    placed = ModelRuntime(path, RuntimeOptions(threads=2, ctx=ctx, placement=Placement(tuple(s.endpoint for s in servers))))
    local.loaded()
    placed.loaded()
    return local, placed


def decode_rate(runtime: ModelRuntime) -> float:
    return max(throughput(runtime.generate(GENERATION_PROMPT, DECODED))["decode_tokens_per_sec"] for _ in range(ROUNDS))


def test_decode_throughput_over_rpc_against_local(benchmark, smollm2: Path, servers: list[RpcServer]) -> None:
    local, placed = runtimes(smollm2, servers, 1024)
    try:
        here = decode_rate(local)
        there = benchmark.pedantic(lambda: decode_rate(placed), rounds=1, iterations=1)
    finally:
        local.close()
        placed.close()
    ratio = there / here
    benchmark.extra_info.update({"local_tokens_per_sec": here, "rpc_tokens_per_sec": there, "ratio": ratio})
    print(f"\nSmolLM2 decode: {here:.1f} tok/s here, {there:.1f} tok/s on two loopback rpc-servers: ratio {ratio:.2f}")
    assert ratio > 0.1


def run_seconds(runtime: ModelRuntime, trace: bool) -> float:
    def run() -> None:
        for prompt in ROUTING_PROMPTS:
            runtime.generate(prompt, TRACED, trace=trace)

    return best_of(ROUNDS, run)


def test_the_routing_trace_overhead_over_rpc_against_local(benchmark, tmp_path: Path, servers: list[RpcServer]) -> None:
    path = tmp_path / "tiny-deepseek4.gguf"
    write_tiny_deepseek4(path, hash_layer_count=1)
    local, placed = runtimes(path, servers, 1024)
    try:
        local_overhead = run_seconds(local, True) / run_seconds(local, False)
        rpc_plain = run_seconds(placed, False)
        rpc_traced = benchmark.pedantic(lambda: run_seconds(placed, True), rounds=1, iterations=1)
    finally:
        local.close()
        placed.close()
    rpc_overhead = rpc_traced / rpc_plain
    benchmark.extra_info.update({"local_trace_overhead": local_overhead, "rpc_trace_overhead": rpc_overhead})
    print(
        f"\ntiny deepseek4, traced vs untraced: x{local_overhead:.2f} here, x{rpc_overhead:.2f} over RPC"
        f" (ratio of the overheads {rpc_overhead / local_overhead:.2f})"
    )
    assert rpc_overhead < 10 * local_overhead
