"""Memory preflight: will this run fit, before llama.cpp allocates anything?

llama.cpp answers it: the worker asks for a dry run (`no_alloc`, the pass
llama.cpp's own --fit uses) of the model and of the context the run will use,
and llama.cpp lays out every cache and compute buffer without allocating them.
The plan is

- the weights' bytes (mapped from the file),
- the caches llama.cpp lays out for this architecture (its log's `llama_kv_cache: size =`
  lines: MLA, sliding-window, compressed and indexer caches as they really are),
- the compute buffers (`compute buffer size =`),
- the logits of one whole batch, which routing traces and log-probabilities ask for,
- the heap the dry run took for everything else (graph and scheduler metadata, the
  vocabulary, the small buffers llama.cpp allocates even in a dry run), which no log line states,

plus a margin of MARGIN_SHARE. A dry run keeps llama.cpp's bookkeeping for every
cell of the context, tens of bytes each: for a context far beyond what fits, that
alone could exhaust the machine. So above PROJECTION_CONTEXTS the plan is first
projected from dry runs at those two lengths (every part grows at most linearly
with the context), and only a context the projection admits gets its own dry run.
The plan is compared with MemAvailable
(`host.available_memory`): too little and the runtime tests are NOT EVALUATED
with the figures, instead of driving the machine into the OOM killer.

With the layers on llama.cpp rpc-servers (--dfqs-rpc), the same dry run places them, and llama.cpp's own memory
breakdown of its context (`runtime.breakdown`, the figures its --fit pass plans with) says what each buffer type
holds: the servers' parts become one NodePlan per server, compared with the free memory that server reported, and
this machine's plan keeps only its own buffers (the input layer, what the split leaves here), the logits and the heap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pytest_dfqs.modelfile.units import human_gib

from .rpc import is_loopback

MIB = 1 << 20
MARGIN_SHARE = 0.05  # thread stacks and what llama.cpp allocates after the context exists
PRINTED_STEP = 0.005  # half of the 0.01 MiB llama.cpp rounds its sizes to
LOGIT_BYTES = 4  # one float per vocabulary entry and output row
PROJECTION_CONTEXTS = (512, 4096)
CACHE_SIZE = re.compile(r"llama_kv_cache: size = +(?P<mib>[\d.]+) MiB")
COMPUTE_BUFFER = re.compile(r"compute buffer size = +(?P<mib>[\d.]+) MiB")


@dataclass(frozen=True)
class NodePlan:
    """What one rpc-server's devices hold at a context, by llama.cpp's memory breakdown, against what it has free."""

    endpoint: str
    free: int
    weights: int
    cache: int
    compute: int

    @property
    def measured(self) -> int:
        return self.weights + self.cache + self.compute

    @property
    def total(self) -> int:
        return self.measured + int(self.measured * MARGIN_SHARE)

    @property
    def host(self) -> str:
        return self.endpoint.rpartition(":")[0]

    def describe(self) -> str:
        return (
            f"node {self.endpoint} needs {human_gib(self.total)} of its {human_gib(self.free)} free"
            f" (weights {human_gib(self.weights)} + caches {human_gib(self.cache)} + compute buffers {human_gib(self.compute)}"
            f" + margin {human_gib(self.total - self.measured)})"
        )

    def evidence(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "needs_bytes": self.total,
            "free_bytes": self.free,
            "weights_bytes": self.weights,
            "cache_bytes": self.cache,
            "compute_bytes": self.compute,
        }


@dataclass(frozen=True)
class MemoryPlan:
    """What a run at `ctx` tokens needs, in bytes, by llama.cpp's dry run."""

    ctx: int
    weights: int
    cache: int
    compute: int
    logits: int
    overhead: int
    projected_from: tuple[int, int] | None = None
    nodes: tuple[NodePlan, ...] = ()  # the rpc-servers' parts; the fields above are then this machine's part alone

    @property
    def measured(self) -> int:
        """Everything llama.cpp's dry run stated or took."""
        return self.weights + self.cache + self.compute + self.logits + self.overhead

    @property
    def margin(self) -> int:
        return int(self.measured * MARGIN_SHARE)

    @property
    def total(self) -> int:
        return self.measured + self.margin

    def describe(self) -> str:
        return (
            f"weights {human_gib(self.weights)} + caches for {self.ctx:,} tokens {human_gib(self.cache)}"
            f" + compute buffers {human_gib(self.compute)} + logits {human_gib(self.logits)}"
            f" + llama.cpp's metadata {human_gib(self.overhead)} + margin {human_gib(self.margin)}, {self.source}"
        )

    @property
    def source(self) -> str:
        if self.projected_from is None:
            return "by llama.cpp's dry run"
        return "projected from llama.cpp's dry runs at {:,} and {:,} tokens".format(*self.projected_from)

    def shortfalls(self, available: int) -> list[str]:
        """What does not fit, one phrase per machine: rpc-servers on one host share its memory (the smallest free
        figure they reported); those on the loopback share this machine's with its own part."""
        hosts: dict[str, list[NodePlan]] = {}
        for node in self.nodes:
            hosts.setdefault("" if is_loopback(node.host) else node.host, []).append(node)
        here = hosts.pop("", [])
        needs = self.total + sum(node.total for node in here)
        short = [_host_shortfall(nodes) for nodes in hosts.values() if sum(n.total for n in nodes) > min(n.free for n in nodes)]
        if needs > available:
            servers = ", ".join(f"node {node.endpoint} {human_gib(node.total)}" for node in here)
            parts = f" (its own part {human_gib(self.total)}, {servers}, on the loopback)" if here else ""
            short.append(f"this machine needs about {human_gib(needs)}{parts}, {human_gib(available)} available")
        return short

    def evidence(self, available: int) -> dict[str, Any]:
        """The plan as the certificate records it next to what the machine offered."""
        return {
            "ctx": self.ctx,
            "needs_bytes": self.total,
            "available_bytes": available,
            "weights_bytes": self.weights,
            "cache_bytes": self.cache,
            "compute_bytes": self.compute,
            "logits_bytes": self.logits,
            "overhead_bytes": self.overhead,
            "margin_bytes": self.margin,
            "projected_from_ctx": list(self.projected_from) if self.projected_from else None,
        } | ({"nodes": [node.evidence() for node in self.nodes], "shortfalls": self.shortfalls(available)} if self.nodes else {})


def _host_shortfall(nodes: list[NodePlan]) -> str:
    if len(nodes) == 1:
        return nodes[0].describe()
    return (
        f"host {nodes[0].host}'s rpc-servers {', '.join(node.endpoint for node in nodes)} need about"
        f" {human_gib(sum(node.total for node in nodes))} together, {human_gib(min(node.free for node in nodes))} free there"
    )


def memory_plan(dry_run: dict[str, Any], ctx: int, n_batch: int) -> MemoryPlan:
    """The plan from the worker's `plan_memory` answer: llama.cpp's logged sizes and measured heap; with rpc-servers,
    its memory breakdown per server and of this machine's own buffers."""
    lines: list[str] = dry_run["lines"]
    logits = n_batch * int(dry_run["n_vocab"]) * LOGIT_BYTES
    overhead = int(dry_run["overhead_bytes"])
    devices: list[dict[str, Any]] = dry_run.get("rpc_devices") or []
    if not devices:
        weights, cache, compute = int(dry_run["weights_bytes"]), logged_bytes(lines, CACHE_SIZE), logged_bytes(lines, COMPUTE_BUFFER)
        return MemoryPlan(ctx, weights, cache, compute, logits, overhead)
    buffers: list[dict[str, Any]] = dry_run["buffers"]
    here = _summed([entry for entry in buffers if entry["endpoint"] is None])
    nodes = tuple(
        NodePlan(
            endpoint,
            sum(d["free_bytes"] for d in devices if d["endpoint"] == endpoint),
            *_summed([entry for entry in buffers if entry["endpoint"] == endpoint]),
        )
        for endpoint in dict.fromkeys(device["endpoint"] for device in devices)
    )
    return MemoryPlan(ctx, *here, logits, overhead, nodes=nodes)


def _summed(buffers: list[dict[str, Any]]) -> tuple[int, int, int]:
    """Weights, caches and compute buffers of these buffer types."""
    weights, cache, compute = (sum(int(entry[part]) for entry in buffers) for part in ("model_bytes", "context_bytes", "compute_bytes"))
    return weights, cache, compute


def projection(short: MemoryPlan, long: MemoryPlan, ctx: int) -> MemoryPlan:
    """The plan at `ctx` tokens, each part (each server's too) extended along the line through two dry runs."""
    scale = (ctx - short.ctx) / (long.ctx - short.ctx)

    def extend(low: Any, high: Any, part: str) -> int:
        start, end = getattr(low, part), getattr(high, part)
        return int(start + max(end - start, 0) * scale)

    parts = ("weights", "cache", "compute", "logits", "overhead")
    nodes = tuple(
        NodePlan(a.endpoint, a.free, *(extend(a, b, part) for part in ("weights", "cache", "compute")))
        for a, b in zip(short.nodes, long.nodes)
    )
    return MemoryPlan(ctx=ctx, projected_from=(short.ctx, long.ctx), nodes=nodes, **{part: extend(short, long, part) for part in parts})


def logged_bytes(lines: list[str], pattern: re.Pattern[str]) -> int:
    """The sum of the sizes on the lines that match; printed to 0.01 MiB, each is counted at its upper bound."""
    return sum(round((float(match["mib"]) + PRINTED_STEP) * MIB) for line in lines if (match := pattern.search(line)))
