"""A GGUF header the size of DeepSeek-V4-Flash's, on a sparse file of the reference size.

About 1,300 tensors (43 layers with 3D routed-expert tensors of 256 experts,
IQ1_S), a 129,280-entry vocabulary and ~128K merges: what the header reader
must get through quickly. Its keys and tensor names are the ones llama.cpp's
deepseek4 loader asks for, so the static tier finds nothing to refuse and runs
every check to the end. The data section is a hole, so the 61.6 GB file costs
no disk.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from gguf.constants import GGMLQuantizationType as T
from gguf.constants import GGUFValueType as V

from .gguf_bytes import RawGGUF, RawTensor

N_LAYER = 43
N_EMBD = 4096
N_EXPERT = 256
N_FF_EXP = 2048
N_VOCAB = 129_280
N_MERGES = 127_741
REFERENCE_BYTES = 61_600_000_000

LAYER_TENSORS: tuple[tuple[str, tuple[int, ...], int], ...] = (
    ("attn_norm.weight", (N_EMBD,), T.F32),
    ("attn_q_a.weight", (N_EMBD, 1024), T.Q8_0),
    ("attn_q_a_norm.weight", (1024,), T.F32),
    ("attn_q_b.weight", (1024, 16384), T.Q8_0),
    ("attn_kv.weight", (N_EMBD, 512), T.Q8_0),
    ("attn_kv_a_norm.weight", (512,), T.F32),
    ("attn_output_a.weight", (N_EMBD, 1024), T.Q8_0),
    ("attn_output_b.weight", (8192, N_EMBD), T.Q8_0),
    ("attn_sinks.weight", (64,), T.F32),
    ("ffn_norm.weight", (N_EMBD,), T.F32),
    ("ffn_gate_inp.weight", (N_EMBD, N_EXPERT), T.F16),
    ("exp_probs_b.bias", (N_EXPERT,), T.F32),
    ("ffn_gate_exps.weight", (N_EMBD, N_FF_EXP, N_EXPERT), T.IQ1_S),
    ("ffn_up_exps.weight", (N_EMBD, N_FF_EXP, N_EXPERT), T.IQ1_S),
    ("ffn_down_exps.weight", (N_FF_EXP, N_EMBD, N_EXPERT), T.IQ1_S),
    ("ffn_gate_shexp.weight", (N_EMBD, N_FF_EXP), T.Q8_0),
    ("ffn_up_shexp.weight", (N_EMBD, N_FF_EXP), T.Q8_0),
    ("ffn_down_shexp.weight", (N_FF_EXP, N_EMBD), T.Q8_0),
    ("attn_compressor_kv.weight", (N_EMBD, 512), T.F16),
    ("attn_compressor_gate.weight", (N_EMBD, 512), T.F16),
    ("attn_compressor_ape.weight", (512, 4), T.F32),
    ("attn_compressor_norm.weight", (512,), T.F32),
    ("indexer.attn_q_b.weight", (1024, 8192), T.F16),
    ("indexer.proj.weight", (N_EMBD, 64), T.F16),
    ("indexer_compressor_kv.weight", (N_EMBD, 256), T.F16),
    ("indexer_compressor_ape.weight", (256, 4), T.F32),
    ("hc_attn_fn.weight", (16384, 24), T.F16),
    ("hc_attn_scale.weight", (3,), T.F32),
    ("hc_ffn_fn.weight", (16384, 24), T.F16),
    ("hc_ffn_scale.weight", (3,), T.F32),
)


def _pieces(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz\u0120\u010a"
    return ["".join(rng.choices(letters, k=rng.randint(2, 12))) for _ in range(count)]


def _unique(pieces: list[str]) -> list[str]:
    """A vocabulary lists each token once (llama.cpp aborts otherwise): a repeated piece gets its position appended."""
    seen: set[str] = set()
    tokens = []
    for index, piece in enumerate(pieces):
        token = piece if piece not in seen else f"{piece}{index}"
        seen.add(token)
        tokens.append(token)
    return tokens


def deepseek_sized_header() -> RawGGUF:
    arch = "deepseek4"
    tokens = _unique(_pieces(N_VOCAB, 1))
    merges = [f"{a} {b}" for a, b in zip(_pieces(N_MERGES, 2), _pieces(N_MERGES, 3))]
    tensors = [RawTensor("token_embd.weight", (N_EMBD, N_VOCAB), T.F16)]
    for layer in range(N_LAYER):
        tensors += [RawTensor(f"blk.{layer}.{name}", shape, kind) for name, shape, kind in LAYER_TENSORS]
    tensors += [RawTensor("output_norm.weight", (N_EMBD,), T.F32), RawTensor("output.weight", (N_EMBD, N_VOCAB), T.Q8_0)]
    return RawGGUF(
        kv=[
            ("general.architecture", V.STRING, arch),
            ("general.name", V.STRING, "DeepSeek-V4-Flash-sized header"),
            (f"{arch}.block_count", V.UINT32, N_LAYER),
            (f"{arch}.context_length", V.UINT32, 1_048_576),
            (f"{arch}.embedding_length", V.UINT32, N_EMBD),
            (f"{arch}.expert_count", V.UINT32, N_EXPERT),
            (f"{arch}.expert_used_count", V.UINT32, 6),
            (f"{arch}.expert_shared_count", V.UINT32, 1),
            (f"{arch}.attention.compress_ratios", V.ARRAY, (V.UINT32, [0, 0, 4, 128] * 11)),
            (f"{arch}.attention.layer_norm_rms_epsilon", V.FLOAT32, 1e-6),
            (f"{arch}.attention.q_lora_rank", V.UINT32, 1024),
            (f"{arch}.attention.sliding_window", V.UINT32, 128),
            (f"{arch}.expert_feed_forward_length", V.UINT32, N_FF_EXP),
            (f"{arch}.expert_weights_scale", V.FLOAT32, 1.5),
            (f"{arch}.expert_weights_norm", V.BOOL, True),
            (f"{arch}.swiglu_clamp_exp", V.FLOAT32, 10.0),
            (f"{arch}.attention.indexer.head_count", V.UINT32, 64),
            (f"{arch}.attention.indexer.key_length", V.UINT32, 128),
            (f"{arch}.attention.indexer.top_k", V.UINT32, 512),
            (f"{arch}.attention.output_group_count", V.UINT32, 8),
            (f"{arch}.attention.output_lora_rank", V.UINT32, 1024),
            (f"{arch}.attention.compress_rope_freq_base", V.FLOAT32, 160000.0),
            (f"{arch}.hyper_connection.count", V.UINT32, 4),
            (f"{arch}.hyper_connection.sinkhorn_iterations", V.UINT32, 20),
            (f"{arch}.hyper_connection.epsilon", V.FLOAT32, 1e-6),
            (f"{arch}.hash_layer_count", V.UINT32, 0),
            (f"{arch}.expert_gating_func", V.UINT32, 4),
            ("tokenizer.ggml.model", V.STRING, "gpt2"),
            ("tokenizer.ggml.tokens", V.ARRAY, (V.STRING, tokens)),
            ("tokenizer.ggml.token_type", V.ARRAY, (V.INT32, [1] * N_VOCAB)),
            ("tokenizer.ggml.merges", V.ARRAY, (V.STRING, merges)),
        ],
        tensors=tensors,
        with_data=False,
    )


def write_sparse(path: Path, raw: RawGGUF, size: int = REFERENCE_BYTES) -> Path:
    """The header followed by a hole: a file of `size` bytes that uses only the header's blocks."""
    header = raw.header_bytes()
    with open(path, "wb") as handle:
        handle.write(header)
        handle.truncate(max(size, len(header)))
    os.utime(path)
    return path
