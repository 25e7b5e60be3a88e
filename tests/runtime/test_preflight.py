"""The memory preflight's estimate: the KV formula on a known model, bounded work on hostile headers."""

from __future__ import annotations

from pathlib import Path

from gguf.constants import GGUFValueType

from pytest_dfqs.modelfile.demo import TinyModelSpec
from pytest_dfqs.modelfile.header import read_header
from pytest_dfqs.runtime.preflight import MARGIN_BYTES, estimate_memory, kv_cache_bytes
from tests.gguf_bytes import minimal_model


def test_kv_cache_of_the_tiny_moe(runtime_moe_model: Path) -> None:
    spec = TinyModelSpec()
    head_dim = spec.n_embd // spec.n_head
    header = read_header(runtime_moe_model)
    assert kv_cache_bytes(header, 4096) == 4096 * spec.n_layer * spec.n_head_kv * 2 * head_dim * 2
    estimate = estimate_memory(header, 4096)
    assert estimate.weights == sum(t.nbytes for t in header.tensors) and estimate.compute >= MARGIN_BYTES


def test_a_huge_declared_block_count_costs_nothing(tmp_path: Path) -> None:
    raw = minimal_model()
    raw.kv = [kv for kv in raw.kv if kv[0] != "llama.block_count"]
    raw.kv += [
        ("llama.block_count", GGUFValueType.UINT32, 2**32 - 1),
        ("llama.attention.head_count", GGUFValueType.UINT32, 2),
        ("llama.embedding_length", GGUFValueType.UINT32, 8),
    ]
    header = read_header(raw.write(tmp_path / "huge.gguf"))
    assert kv_cache_bytes(header, 1024) == 1024 * 1 * 2 * (4 + 4) * 2  # counted for the one block present, blk.0
