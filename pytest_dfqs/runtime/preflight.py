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
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pytest_dfqs.modelfile.units import human_gib

MIB = 1 << 20
MARGIN_SHARE = 0.05  # thread stacks and what llama.cpp allocates after the context exists
PRINTED_STEP = 0.005  # half of the 0.01 MiB llama.cpp rounds its sizes to
LOGIT_BYTES = 4  # one float per vocabulary entry and output row
PROJECTION_CONTEXTS = (512, 4096)
CACHE_SIZE = re.compile(r"llama_kv_cache: size = +(?P<mib>[\d.]+) MiB")
COMPUTE_BUFFER = re.compile(r"compute buffer size = +(?P<mib>[\d.]+) MiB")


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
        }


def memory_plan(dry_run: dict[str, Any], ctx: int, n_batch: int) -> MemoryPlan:
    """The plan from the worker's `plan_memory` answer: llama.cpp's logged sizes and measured heap."""
    lines: list[str] = dry_run["lines"]
    return MemoryPlan(
        ctx=ctx,
        weights=int(dry_run["weights_bytes"]),
        cache=logged_bytes(lines, CACHE_SIZE),
        compute=logged_bytes(lines, COMPUTE_BUFFER),
        logits=n_batch * int(dry_run["n_vocab"]) * LOGIT_BYTES,
        overhead=int(dry_run["overhead_bytes"]),
    )


def projection(short: MemoryPlan, long: MemoryPlan, ctx: int) -> MemoryPlan:
    """The plan at `ctx` tokens, each part extended along the line through two dry runs."""
    scale = (ctx - short.ctx) / (long.ctx - short.ctx)

    def extend(part: str) -> int:
        low, high = getattr(short, part), getattr(long, part)
        return int(low + max(high - low, 0) * scale)

    parts = ("weights", "cache", "compute", "logits", "overhead")
    return MemoryPlan(ctx=ctx, projected_from=(short.ctx, long.ctx), **{part: extend(part) for part in parts})


def logged_bytes(lines: list[str], pattern: re.Pattern[str]) -> int:
    """The sum of the sizes on the lines that match; printed to 0.01 MiB, each is counted at its upper bound."""
    return sum(round((float(match["mib"]) + PRINTED_STEP) * MIB) for line in lines if (match := pattern.search(line)))
