"""Memory preflight: will loading this model fit, before llama.cpp tries?

The estimate is the mapped tensor bytes, the KV cache for the chosen context
(f16 keys and values for every layer's KV heads, from the header's
hyperparameters), and a compute margin of 512 MiB plus 5% of the weights. It
is compared with MemAvailable (`host.available_memory`): too little and the runtime tests skip with the
figures, instead of driving the machine into the OOM killer.
"""

from __future__ import annotations

from dataclasses import dataclass

from gguf.constants import Keys

from pytest_dfqs.modelfile.facts import blocks_present, metadata_count
from pytest_dfqs.modelfile.header import ArrayValue, GGUFHeader, MetadataValue
from pytest_dfqs.modelfile.units import human_gib

KV_BYTES_PER_VALUE = 2  # llama.cpp's default cache type is f16
MARGIN_BYTES = 512 << 20
MARGIN_SHARE = 0.05


@dataclass(frozen=True)
class MemoryEstimate:
    weights: int
    kv_cache: int
    compute: int
    ctx: int

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.compute

    def describe(self) -> str:
        return (
            f"weights {human_gib(self.weights)} + KV cache for {self.ctx:,} tokens {human_gib(self.kv_cache)}"
            f" + compute margin {human_gib(self.compute)}"
        )


def estimate_memory(header: GGUFHeader, ctx: int) -> MemoryEstimate:
    weights = sum(t.nbytes for t in header.tensors)
    return MemoryEstimate(weights, kv_cache_bytes(header, ctx), MARGIN_BYTES + int(weights * MARGIN_SHARE), ctx)


def kv_cache_bytes(header: GGUFHeader, ctx: int) -> int:
    """f16 K and V for every layer: ctx x KV heads x (key + value length).

    The layer count is the declared block count, but never more than the
    blocks the file has tensors for: a header cannot make this loop long.
    """
    n_layer = min(metadata_count(header.arch_value(Keys.LLM.BLOCK_COUNT)) or 0, blocks_present(header))
    n_embd = metadata_count(header.arch_value(Keys.LLM.EMBEDDING_LENGTH)) or 0
    heads = _per_layer(header.arch_value(Keys.Attention.HEAD_COUNT), n_layer)
    kv_heads = _per_layer(header.arch_value(Keys.Attention.HEAD_COUNT_KV), n_layer) or heads
    per_layer = 0
    for layer in range(n_layer):
        head_dim = n_embd // heads[layer] if heads and heads[layer] else 0
        key = metadata_count(header.arch_value(Keys.Attention.KEY_LENGTH)) or head_dim
        value = metadata_count(header.arch_value(Keys.Attention.VALUE_LENGTH)) or head_dim
        per_layer += (kv_heads[layer] if kv_heads else 0) * (key + value)
    return ctx * per_layer * KV_BYTES_PER_VALUE


def _per_layer(value: MetadataValue | None, n_layer: int) -> list[int]:
    """A per-layer hyperparameter that GGUF stores either once or as an array."""
    if isinstance(value, ArrayValue) and value.values is not None:
        counts = [metadata_count(v) for v in value.values[:n_layer]]
        return [c or 0 for c in counts] + [0] * (n_layer - len(counts))
    count = metadata_count(value)
    return [count] * n_layer if count is not None else []
