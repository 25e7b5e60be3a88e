"""A tiny random-weight Qwen3-MoE (`qwen3moe`) GGUF that llama.cpp runs: a third loader for the differential tests.

Its loader (src/models/qwen3moe.cpp in the sdist) differs from llama's where the
static rules must follow it: per-head q/k norms, the expert feed-forward length
as its own key, a router in every layer and no dense feed-forward. Weights are
seeded normals; the bytes are identical on every run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFWriter

from pytest_dfqs.modelfile.demo import add_tokenizer, vocabulary

ARCH = "qwen3moe"
N_LAYER = 2
N_EMBD = 64
N_HEAD = 4
N_HEAD_KV = 2
HEAD_DIM = 16
N_EXPERT = 4
N_EXPERT_USED = 2
N_FF_EXP = 32
CONTEXT_LENGTH = 4096


def write_tiny_qwen3moe(path: Path, seed: int = 11) -> None:
    writer = GGUFWriter(path, ARCH)
    writer.add_name("tiny-qwen3moe")
    writer.add_context_length(CONTEXT_LENGTH)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD_KV)
    writer.add_key_length(HEAD_DIM)
    writer.add_value_length(HEAD_DIM)
    writer.add_rope_dimension_count(HEAD_DIM)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_expert_count(N_EXPERT)
    writer.add_expert_used_count(N_EXPERT_USED)
    writer.add_expert_feed_forward_length(N_FF_EXP)
    add_tokenizer(writer)
    for name, array in build_tensors(seed).items():
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def build_tensors(seed: int) -> dict[str, np.ndarray]:
    """numpy-shaped (outermost dimension first), as GGUFWriter takes them."""
    rng = np.random.default_rng(seed)
    n_vocab = len(vocabulary())

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.02).astype(np.float16)

    def norm(size: int) -> np.ndarray:
        return np.ones(size, dtype=np.float32)

    tensors = {"token_embd.weight": weight(n_vocab, N_EMBD)}
    for layer in range(N_LAYER):
        block = f"blk.{layer}"
        tensors |= {
            f"{block}.attn_norm.weight": norm(N_EMBD),
            f"{block}.attn_q.weight": weight(N_HEAD * HEAD_DIM, N_EMBD),
            f"{block}.attn_k.weight": weight(N_HEAD_KV * HEAD_DIM, N_EMBD),
            f"{block}.attn_v.weight": weight(N_HEAD_KV * HEAD_DIM, N_EMBD),
            f"{block}.attn_output.weight": weight(N_EMBD, N_HEAD * HEAD_DIM),
            f"{block}.attn_q_norm.weight": norm(HEAD_DIM),
            f"{block}.attn_k_norm.weight": norm(HEAD_DIM),
            f"{block}.ffn_norm.weight": norm(N_EMBD),
            f"{block}.ffn_gate_inp.weight": weight(N_EXPERT, N_EMBD).astype(np.float32),
            f"{block}.ffn_gate_exps.weight": weight(N_EXPERT, N_FF_EXP, N_EMBD),
            f"{block}.ffn_up_exps.weight": weight(N_EXPERT, N_FF_EXP, N_EMBD),
            f"{block}.ffn_down_exps.weight": weight(N_EXPERT, N_EMBD, N_FF_EXP),
        }
    tensors["output_norm.weight"] = norm(N_EMBD)
    tensors["output.weight"] = weight(n_vocab, N_EMBD)
    return tensors
