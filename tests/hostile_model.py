"""A hostile GGUF: whatever it is asked, greedy decoding writes the same attack program.

Every layer's weights are zero and every token's embedding is the same, so the
hidden state is the same at every position; the output head scores one
vocabulary entry, holding the attack text, above all others. llama.cpp loads
and runs it like any llama model; the eval tier's HumanEval completions are the
attack, over and over.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFWriter

from pytest_dfqs.modelfile.demo import TinyModelSpec, add_metadata, vocabulary

SPEC = TinyModelSpec(n_expert=0, n_expert_used=0, context_length=4096)


def write_hostile_model(path: Path, attack: str) -> Path:
    """A dense llama model whose every greedy token is `attack` (one vocabulary entry)."""
    writer = GGUFWriter(path, "llama")
    add_metadata(writer, SPEC, "hostile", extra_tokens=(attack,))
    for name, array in _tensors(len(vocabulary()) + 1).items():
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _tensors(n_vocab: int) -> dict[str, np.ndarray]:
    embd, head_kv = SPEC.n_embd, SPEC.n_head_kv * (SPEC.n_embd // SPEC.n_head)
    ones = np.ones(embd, dtype=np.float32)
    zeros = {"attn_q": (embd, embd), "attn_k": (head_kv, embd), "attn_v": (head_kv, embd), "attn_output": (embd, embd)}
    zeros |= {"ffn_gate": (SPEC.n_ff, embd), "ffn_up": (SPEC.n_ff, embd), "ffn_down": (embd, SPEC.n_ff)}
    tensors = {"token_embd.weight": np.full((n_vocab, embd), 0.1, dtype=np.float16)}
    for layer in range(SPEC.n_layer):
        tensors |= {f"blk.{layer}.{name}.weight": np.zeros(shape, dtype=np.float16) for name, shape in zeros.items()}
        tensors |= {f"blk.{layer}.attn_norm.weight": ones, f"blk.{layer}.ffn_norm.weight": ones}
    head = np.zeros((n_vocab, embd), dtype=np.float16)
    head[n_vocab - 1] = 1.0  # the attack, the last entry, wins every step
    return tensors | {"output_norm.weight": ones, "output.weight": head}
