"""A GGUF header of DeepSeek-V4-Flash's shape and size, on a sparse file of the reference size.

DeepSeek-V4-Flash's own dimensions (its config.json): 43 layers of width 4,096;
64 query heads of 512 with one KV head and a 64-dimension rotary part; query
and output low-rank projections of rank 1,024, the output in 8 groups; 256
routed experts of 2,048, 6 used, one shared; compress ratios 0, 0, then 4 and
128 alternating (a ratio-4 layer also carries the lightning indexer, 64 heads
of 128, top-k 512); 4 hyper-connection streams; the first 3 layers routed by a
token-id table; a 129,280-token vocabulary with ~128K merges. That makes
1,328 tensors (what the dynamic IQ1_M card's dtype table adds up to), 284.3B
parameters, 13.3B active without the input embedding. The tensor types are the
ds4 cards' recipe (F16 embedding, router, hyper-connections, compressors and
indexer; F32 norms, sinks and biases; Q8_0 shared experts and output head; I32
hash tables) with IQ1_S routed experts, and Q4_K attention projections: with
Q8_0 ones (4.9 GB) beside the IQ1_S experts (54.1 GB) the data would not fit
in 61.6 GB.

The keys and tensors are the ones llama.cpp's deepseek4 loader asks for
(src/models/deepseek4.cpp): llama.cpp accepts the file and builds the graph of a
context, so the static tier runs every check, llama.cpp's dry run included, to
the end. The data section is a hole: the 61.6 GB file costs no disk.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from gguf.constants import GGMLQuantizationType as T
from gguf.constants import GGUFValueType as V

from .gguf_bytes import RawGGUF, RawTensor

ARCH = "deepseek4"
N_LAYER = 43
N_EMBD = 4096
N_HEAD = 64
HEAD_DIM = 512
ROPE_DIM = 64
Q_LORA_RANK = 1024
O_GROUPS = 8
O_LORA_RANK = 1024
HC_MULT = 4  # hyper-connection streams; llama.cpp's graph asserts 4
HC_MIX = (2 + HC_MULT) * HC_MULT
INDEXER_HEADS = 64
INDEXER_HEAD_DIM = 128
N_EXPERT = 256
N_EXPERT_USED = 6
N_FF_EXP = 2048
HASH_LAYERS = 3  # layers routed by a token-id -> expert-ids table instead of a learned bias
N_VOCAB = 129_280
N_MERGES = 127_741
# 44 entries for 43 layers, as the checkpoint ships them (the last is its multi-token-prediction layer's)
COMPRESS_RATIOS = (0, 0, *(4, 128) * 20, 4, 0)
GATING_SQRT_SOFTPLUS = 4  # the only expert gating function the deepseek4 loader accepts
REFERENCE_BYTES = 61_600_000_000

ATTENTION = T.Q4_K
EXPERTS = T.IQ1_S


def layer_tensors(layer: int) -> list[tuple[str, tuple[int, ...], int]]:
    """One block's tensors: name, shape (llama.cpp's ne order, innermost first) and type."""
    tensors: list[tuple[str, tuple[int, ...], int]] = [
        ("attn_norm.weight", (N_EMBD,), T.F32),
        ("attn_sinks.weight", (N_HEAD,), T.F32),
        ("attn_q_a.weight", (N_EMBD, Q_LORA_RANK), ATTENTION),
        ("attn_q_a_norm.weight", (Q_LORA_RANK,), T.F32),
        ("attn_q_b.weight", (Q_LORA_RANK, N_HEAD * HEAD_DIM), ATTENTION),
        ("attn_kv.weight", (N_EMBD, HEAD_DIM), ATTENTION),
        ("attn_kv_a_norm.weight", (HEAD_DIM,), T.F32),
        # stored 2D, as the released files have it; llama.cpp views it as [group width, rank, groups]
        ("attn_output_a.weight", (N_HEAD * HEAD_DIM // O_GROUPS, O_GROUPS * O_LORA_RANK), ATTENTION),
        ("attn_output_b.weight", (O_GROUPS * O_LORA_RANK, N_EMBD), ATTENTION),
    ]
    for site in ("attn", "ffn"):
        tensors += [
            (f"hc_{site}_fn.weight", (HC_MULT * N_EMBD, HC_MIX), T.F16),
            (f"hc_{site}_base.weight", (HC_MIX,), T.F32),
            (f"hc_{site}_scale.weight", (3,), T.F32),
        ]
    ratio = COMPRESS_RATIOS[layer]
    if ratio:
        width = (2 if ratio == 4 else 1) * HEAD_DIM
        tensors += [
            ("attn_compressor_kv.weight", (N_EMBD, width), T.F16),
            ("attn_compressor_gate.weight", (N_EMBD, width), T.F16),
            ("attn_compressor_ape.weight", (width, ratio), T.F16),
            ("attn_compressor_norm.weight", (HEAD_DIM,), T.F32),
        ]
    if ratio == 4:
        tensors += [
            ("indexer.proj.weight", (N_EMBD, INDEXER_HEADS), T.F16),
            ("indexer.attn_q_b.weight", (Q_LORA_RANK, INDEXER_HEADS * INDEXER_HEAD_DIM), T.F16),
            ("indexer_compressor_kv.weight", (N_EMBD, 2 * INDEXER_HEAD_DIM), T.F16),
            ("indexer_compressor_gate.weight", (N_EMBD, 2 * INDEXER_HEAD_DIM), T.F16),
            ("indexer_compressor_ape.weight", (2 * INDEXER_HEAD_DIM, ratio), T.F16),
            ("indexer_compressor_norm.weight", (INDEXER_HEAD_DIM,), T.F32),
        ]
    tensors.append(("ffn_gate_inp.weight", (N_EMBD, N_EXPERT), T.F16))
    if layer < HASH_LAYERS:
        tensors.append(("ffn_gate_tid2eid.weight", (N_EXPERT_USED, N_VOCAB), T.I32))
    else:
        tensors.append(("exp_probs_b.bias", (N_EXPERT,), T.F32))
    return tensors + [
        ("ffn_norm.weight", (N_EMBD,), T.F32),
        ("ffn_gate_exps.weight", (N_EMBD, N_FF_EXP, N_EXPERT), EXPERTS),
        ("ffn_up_exps.weight", (N_EMBD, N_FF_EXP, N_EXPERT), EXPERTS),
        ("ffn_down_exps.weight", (N_FF_EXP, N_EMBD, N_EXPERT), EXPERTS),
        ("ffn_gate_shexp.weight", (N_EMBD, N_FF_EXP), T.Q8_0),
        ("ffn_up_shexp.weight", (N_EMBD, N_FF_EXP), T.Q8_0),
        ("ffn_down_shexp.weight", (N_FF_EXP, N_EMBD), T.Q8_0),
    ]


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
    tokens = _unique(_pieces(N_VOCAB, 1))
    merges = [f"{a} {b}" for a, b in zip(_pieces(N_MERGES, 2), _pieces(N_MERGES, 3))]
    tensors = [
        RawTensor("token_embd.weight", (N_EMBD, N_VOCAB), T.F16),
        RawTensor("output_norm.weight", (N_EMBD,), T.F32),
        RawTensor("output.weight", (N_EMBD, N_VOCAB), T.Q8_0),
        RawTensor("output_hc_fn.weight", (HC_MULT * N_EMBD, HC_MULT), T.F16),
        RawTensor("output_hc_base.weight", (HC_MULT,), T.F32),
        RawTensor("output_hc_scale.weight", (1,), T.F32),
    ]
    for layer in range(N_LAYER):
        tensors += [RawTensor(f"blk.{layer}.{name}", shape, kind) for name, shape, kind in layer_tensors(layer)]
    return RawGGUF(
        kv=[
            ("general.architecture", V.STRING, ARCH),
            ("general.name", V.STRING, "DeepSeek-V4-Flash-sized header"),
            (f"{ARCH}.block_count", V.UINT32, N_LAYER),
            (f"{ARCH}.context_length", V.UINT32, 1_048_576),
            (f"{ARCH}.embedding_length", V.UINT32, N_EMBD),
            (f"{ARCH}.attention.head_count", V.UINT32, N_HEAD),
            (f"{ARCH}.attention.head_count_kv", V.UINT32, 1),
            (f"{ARCH}.attention.key_length", V.UINT32, HEAD_DIM),
            (f"{ARCH}.attention.value_length", V.UINT32, HEAD_DIM),
            (f"{ARCH}.rope.dimension_count", V.UINT32, ROPE_DIM),
            (f"{ARCH}.rope.freq_base", V.FLOAT32, 10000.0),
            (f"{ARCH}.rope.scaling.type", V.STRING, "yarn"),
            (f"{ARCH}.rope.scaling.factor", V.FLOAT32, 16.0),
            (f"{ARCH}.rope.scaling.original_context_length", V.UINT32, 65_536),
            (f"{ARCH}.expert_count", V.UINT32, N_EXPERT),
            (f"{ARCH}.expert_used_count", V.UINT32, N_EXPERT_USED),
            (f"{ARCH}.expert_shared_count", V.UINT32, 1),
            (f"{ARCH}.attention.compress_ratios", V.ARRAY, (V.UINT32, list(COMPRESS_RATIOS))),
            (f"{ARCH}.attention.layer_norm_rms_epsilon", V.FLOAT32, 1e-6),
            (f"{ARCH}.attention.q_lora_rank", V.UINT32, Q_LORA_RANK),
            (f"{ARCH}.attention.sliding_window", V.UINT32, 128),
            (f"{ARCH}.expert_feed_forward_length", V.UINT32, N_FF_EXP),
            (f"{ARCH}.expert_weights_scale", V.FLOAT32, 1.5),
            (f"{ARCH}.expert_weights_norm", V.BOOL, True),
            (f"{ARCH}.swiglu_clamp_exp", V.FLOAT32, 10.0),
            (f"{ARCH}.attention.indexer.head_count", V.UINT32, INDEXER_HEADS),
            (f"{ARCH}.attention.indexer.key_length", V.UINT32, INDEXER_HEAD_DIM),
            (f"{ARCH}.attention.indexer.top_k", V.UINT32, 512),
            (f"{ARCH}.attention.output_group_count", V.UINT32, O_GROUPS),
            (f"{ARCH}.attention.output_lora_rank", V.UINT32, O_LORA_RANK),
            (f"{ARCH}.attention.compress_rope_freq_base", V.FLOAT32, 160000.0),
            (f"{ARCH}.hyper_connection.count", V.UINT32, HC_MULT),
            (f"{ARCH}.hyper_connection.sinkhorn_iterations", V.UINT32, 20),
            (f"{ARCH}.hyper_connection.epsilon", V.FLOAT32, 1e-6),
            (f"{ARCH}.hash_layer_count", V.UINT32, HASH_LAYERS),
            (f"{ARCH}.expert_gating_func", V.UINT32, GATING_SQRT_SOFTPLUS),
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
