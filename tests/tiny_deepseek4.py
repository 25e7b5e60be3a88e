"""A tiny random-weight DeepSeek-V4-Flash (`deepseek4`) GGUF that llama.cpp runs.

Tests that watch routing in a live llama.cpp graph (its `ffn_moe_topk-<layer>`
nodes) need the real DeepSeek-V4 graph, not the `llama` demo model:
hyper-connections, compressed and indexed attention, sqrt-softplus routing, a
shared expert, and optionally hash-routed layers whose experts come from a
token-id table. This builds one in ~9 MB, in milliseconds, with no download.

The recipe follows llama.cpp's own `tests/test-llama-archs.cpp`. The installed
`gguf` package predates `deepseek4`, so every architecture key is written by its
full name. Weights are seeded normals: the bytes are identical on every run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from gguf import GGUFWriter
from gguf.constants import GGUFValueType

from pytest_dfqs.modelfile.demo import add_tokenizer, vocabulary

ARCH = "deepseek4"
CONTEXT_LENGTH = 4096
N_LAYER = 4
N_EMBD = 128
N_HEAD = 8
HEAD_DIM = 64
ROPE_DIM = HEAD_DIM // 2
Q_LORA_RANK = 64
O_GROUPS = 8
O_LORA_RANK = 32
COMPRESS_RATIOS = (0, 0, 4, 128)  # per layer: plain, plain, compressed + indexer, heavily compressed
HC_MULT = 4  # hyper-connection streams; the graph asserts 4
HC_MIX = (2 + HC_MULT) * HC_MULT
INDEXER_HEADS = 64
INDEXER_HEAD_DIM = 128
INDEXER_TOP_K = 512
SLIDING_WINDOW = 128
N_EXPERT = 4
N_EXPERT_USED = 2
N_EXPERT_SHARED = 1
N_FF_EXP = 128
GATING_SQRT_SOFTPLUS = 4  # the only gating function the deepseek4 loader accepts
WEIGHT_STD = 0.02

Weight = Callable[..., np.ndarray]


def write_tiny_deepseek4(path: Path, *, hash_layer_count: int = 0, seed: int = 7) -> None:
    """Write the model to `path`; the first `hash_layer_count` layers route by token-id table."""
    if not 0 <= hash_layer_count <= N_LAYER:
        raise ValueError(f"hash_layer_count must be in [0, {N_LAYER}], got {hash_layer_count}")
    writer = GGUFWriter(path, ARCH)
    _add_hyperparameters(writer, hash_layer_count)
    add_tokenizer(writer)
    for name, array in build_tensors(hash_layer_count, seed).items():
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _add_hyperparameters(writer: GGUFWriter, hash_layer_count: int) -> None:
    writer.add_string("general.name", "tiny-deepseek4")
    for key, value in {
        "context_length": CONTEXT_LENGTH,
        "embedding_length": N_EMBD,
        "block_count": N_LAYER,
        "attention.head_count": N_HEAD,
        "attention.head_count_kv": 1,
        "attention.key_length": HEAD_DIM,
        "attention.value_length": HEAD_DIM,
        "rope.dimension_count": ROPE_DIM,
        "attention.q_lora_rank": Q_LORA_RANK,
        "attention.sliding_window": SLIDING_WINDOW,
        "attention.output_group_count": O_GROUPS,
        "attention.output_lora_rank": O_LORA_RANK,
        "attention.indexer.head_count": INDEXER_HEADS,
        "attention.indexer.key_length": INDEXER_HEAD_DIM,
        "attention.indexer.top_k": INDEXER_TOP_K,
        "hyper_connection.count": HC_MULT,
        "hyper_connection.sinkhorn_iterations": 2,
        "hash_layer_count": hash_layer_count,
        "expert_count": N_EXPERT,
        "expert_used_count": N_EXPERT_USED,
        "expert_shared_count": N_EXPERT_SHARED,
        "expert_feed_forward_length": N_FF_EXP,
        "expert_gating_func": GATING_SQRT_SOFTPLUS,
    }.items():
        writer.add_uint32(f"{ARCH}.{key}", value)
    for key, number in {
        "attention.layer_norm_rms_epsilon": 1e-6,
        "rope.freq_base": 10000.0,
        "attention.compress_rope_freq_base": 160000.0,
        "hyper_connection.epsilon": 1e-6,
        "expert_weights_scale": 1.0,
        "swiglu_clamp_exp": 10.0,
    }.items():
        writer.add_float32(f"{ARCH}.{key}", number)
    writer.add_bool(f"{ARCH}.expert_weights_norm", True)
    writer.add_key_value(f"{ARCH}.attention.compress_ratios", list(COMPRESS_RATIOS), GGUFValueType.ARRAY, GGUFValueType.UINT32)


def build_tensors(hash_layer_count: int = 0, seed: int = 7) -> dict[str, np.ndarray]:
    """All tensors, numpy-shaped (outermost dimension first, the reverse of llama.cpp's `ne`)."""
    rng = np.random.default_rng(seed)
    n_vocab = len(vocabulary())

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * WEIGHT_STD).astype(np.float32)

    tensors = {
        "token_embd.weight": weight(n_vocab, N_EMBD),
        "output_norm.weight": _ones(N_EMBD),
        "output.weight": weight(n_vocab, N_EMBD),
        "output_hc_fn.weight": weight(HC_MULT, HC_MULT * N_EMBD),
        "output_hc_base.weight": weight(HC_MULT),
        "output_hc_scale.weight": weight(1),
    }
    for layer in range(N_LAYER):
        block = f"blk.{layer}"
        tensors.update(_attention(block, weight))
        tensors.update(_hyper_connections(block, weight))
        tensors.update(_compressor(block, COMPRESS_RATIOS[layer], weight))
        tensors.update(_router(block, layer < hash_layer_count, n_vocab, rng, weight))
        tensors.update(_experts(block, weight))
    return tensors


def _ones(n: int) -> np.ndarray:
    return np.ones(n, dtype=np.float32)


def _attention(block: str, weight: Weight) -> dict[str, np.ndarray]:
    return {
        f"{block}.attn_norm.weight": _ones(N_EMBD),
        f"{block}.attn_sinks.weight": weight(N_HEAD),
        f"{block}.attn_q_a.weight": weight(Q_LORA_RANK, N_EMBD),
        f"{block}.attn_q_a_norm.weight": _ones(Q_LORA_RANK),
        f"{block}.attn_q_b.weight": weight(N_HEAD * HEAD_DIM, Q_LORA_RANK),
        f"{block}.attn_kv.weight": weight(HEAD_DIM, N_EMBD),
        f"{block}.attn_kv_a_norm.weight": _ones(HEAD_DIM),
        # stored 2D as in the released files; llama.cpp views it as [groups, rank, group width]
        f"{block}.attn_output_a.weight": weight(O_GROUPS * O_LORA_RANK, N_HEAD * HEAD_DIM // O_GROUPS),
        f"{block}.attn_output_b.weight": weight(N_EMBD, O_GROUPS * O_LORA_RANK),
    }


def _hyper_connections(block: str, weight: Weight) -> dict[str, np.ndarray]:
    tensors = {}
    for site in ("attn", "ffn"):
        tensors[f"{block}.hc_{site}_fn.weight"] = weight(HC_MIX, HC_MULT * N_EMBD)
        tensors[f"{block}.hc_{site}_base.weight"] = weight(HC_MIX)
        tensors[f"{block}.hc_{site}_scale.weight"] = weight(3)
    return tensors


def _compressor(block: str, ratio: int, weight: Weight) -> dict[str, np.ndarray]:
    """KV compressor of a ratio-4 or ratio-128 layer; ratio 4 layers also carry the lightning indexer."""
    if ratio == 0:
        return {}
    width = (2 if ratio == 4 else 1) * HEAD_DIM
    tensors = {
        f"{block}.attn_compressor_kv.weight": weight(width, N_EMBD),
        f"{block}.attn_compressor_gate.weight": weight(width, N_EMBD),
        f"{block}.attn_compressor_ape.weight": weight(ratio, width),
        f"{block}.attn_compressor_norm.weight": _ones(HEAD_DIM),
    }
    if ratio == 4:
        tensors.update(
            {
                f"{block}.indexer.proj.weight": weight(INDEXER_HEADS, N_EMBD),
                f"{block}.indexer.attn_q_b.weight": weight(INDEXER_HEADS * INDEXER_HEAD_DIM, Q_LORA_RANK),
                f"{block}.indexer_compressor_kv.weight": weight(2 * INDEXER_HEAD_DIM, N_EMBD),
                f"{block}.indexer_compressor_gate.weight": weight(2 * INDEXER_HEAD_DIM, N_EMBD),
                f"{block}.indexer_compressor_ape.weight": weight(ratio, 2 * INDEXER_HEAD_DIM),
                f"{block}.indexer_compressor_norm.weight": _ones(INDEXER_HEAD_DIM),
            }
        )
    return tensors


def _router(block: str, hash_routed: bool, n_vocab: int, rng: np.random.Generator, weight: Weight) -> dict[str, np.ndarray]:
    """Learned gate; a hash-routed layer adds a token-id -> expert-ids table, others a selection bias."""
    tensors = {f"{block}.ffn_gate_inp.weight": weight(N_EXPERT, N_EMBD)}
    if hash_routed:
        tensors[f"{block}.ffn_gate_tid2eid.weight"] = tid2eid_table(n_vocab, rng)
    else:
        tensors[f"{block}.exp_probs_b.bias"] = weight(N_EXPERT)
    return tensors


def tid2eid_table(n_vocab: int, rng: np.random.Generator) -> np.ndarray:
    """[n_vocab, n_expert_used] int32: for each token, distinct expert ids in [0, N_EXPERT)."""
    permutations = np.argsort(rng.random((n_vocab, N_EXPERT)), axis=1)
    return permutations[:, :N_EXPERT_USED].astype(np.int32)


def _experts(block: str, weight: Weight) -> dict[str, np.ndarray]:
    shared = N_FF_EXP * N_EXPERT_SHARED
    return {
        f"{block}.ffn_norm.weight": _ones(N_EMBD),
        f"{block}.ffn_gate_exps.weight": weight(N_EXPERT, N_FF_EXP, N_EMBD),
        f"{block}.ffn_up_exps.weight": weight(N_EXPERT, N_FF_EXP, N_EMBD),
        f"{block}.ffn_down_exps.weight": weight(N_EXPERT, N_EMBD, N_FF_EXP),
        f"{block}.ffn_gate_shexp.weight": weight(shared, N_EMBD),
        f"{block}.ffn_up_shexp.weight": weight(shared, N_EMBD),
        f"{block}.ffn_down_shexp.weight": weight(N_EMBD, shared),
    }
