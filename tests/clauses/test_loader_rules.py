"""The static prediction of llama.cpp's refusals: each rule against llama.cpp's own verdict on the same file."""

from __future__ import annotations

import json
import struct
from dataclasses import replace
from importlib import metadata
from pathlib import Path

import pytest

from pytest_dfqs.clauses.loader_rules import LOADER_FILE, LoaderTable, architecture_problems, loader_problems, loader_table
from pytest_dfqs.modelfile.demo import TinyModelSpec, write_model
from pytest_dfqs.modelfile.header import read_header
from tests.llama_cpp_source import fetch_sdist, render, table
from tests.llama_judge import LlamaJudge

ONE = struct.pack("<Q", 1)  # the length of a one-byte GGUF string


@pytest.fixture(scope="module")
def judge() -> LlamaJudge:
    llama = LlamaJudge()
    yield llama
    llama.close()


def _patched(source: Path, target: Path, old: bytes, new: bytes) -> Path:
    data = source.read_bytes()
    assert data.count(old) == 1 and len(old) == len(new)
    target.write_bytes(data.replace(old, new))
    return target


def _u32(source: Path, target: Path, key: str, value: int) -> Path:
    """The file with one UINT32 metadata value written over."""
    header = read_header(source)
    data = bytearray(source.read_bytes())
    struct.pack_into("<I", data, header.metadata_offsets[key] + 8 + len(key) + 4, value)
    target.write_bytes(data)
    return target


def refused_files(base: Path, folder: Path) -> dict[str, tuple[Path, str]]:
    """Files llama.cpp refuses, each with the words the static rule must say."""
    used_five = folder / "used5.gguf"
    write_model(used_five, TinyModelSpec(n_expert_used=5, context_length=4096))
    no_used = folder / "used0.gguf"
    write_model(no_used, TinyModelSpec(n_expert_used=0, context_length=4096))
    return {
        "renamed tensor": (_patched(base, folder / "renamed.gguf", b"blk.1.ffn_norm", b"blk.1.ffn_nxrm"), "blk.1.ffn_nxrm.weight"),
        "unknown tokenizer": (
            _patched(base, folder / "tok.gguf", b"\x05\x00\x00\x00\x00\x00\x00\x00llama\x15", b"\x05\x00\x00\x00\x00\x00\x00\x00llaxa\x15"),
            "unknown tokenizer",
        ),
        "duplicate token": (_patched(base, folder / "dup.gguf", ONE + b"a" + ONE + b"b", ONE + b"a" + ONE + b"a"), "holds b'a' twice"),
        "more used than experts": (used_five, "GGML_ASSERT(n_expert_used_max <= hparams.n_expert)"),
        "no expert used": (no_used, "GGML_ASSERT(n_expert_used_max > 0)"),
        "blocks missing": (_u32(base, folder / "blocks3.gguf", "llama.block_count", 3), "does not find blk.2.*"),
        "expert shape": (
            _u32(base, folder / "ff.gguf", "llama.feed_forward_length", 64),
            "llama.cpp expects [64, 64, 4] (n_embd=64, n_expert=4, n_ff=64)",
        ),
        "attention shape": (
            _u32(base, folder / "kv-heads.gguf", "llama.attention.head_count_kv", 1),
            "has shape [64, 32]; llama.cpp expects [64, 16] (n_embd=64, n_embd_k_gqa=16)",
        ),
        "rope dimension": (_u32(base, folder / "rope.gguf", "llama.rope.dimension_count", 8), "invalid n_rot"),
        "required key renamed": (
            _patched(base, folder / "eps.gguf", b"layer_norm_rms_epsilon", b"layer_norm_rms_epsilxn"),
            "without llama.attention.layer_norm_rms_epsilon",
        ),
    }


def test_each_rule_agrees_with_llama_cpp(runtime_moe_model: Path, tmp_path: Path, judge: LlamaJudge) -> None:
    assert loader_problems(read_header(runtime_moe_model)) == ([], [])
    assert judge.judge(runtime_moe_model).runs
    for case, (path, words) in refused_files(runtime_moe_model, tmp_path).items():
        refused, _ = loader_problems(read_header(path))
        assert refused and words in refused[0], (case, refused)
        assert not judge.judge(path).runs, case


def test_real_and_deepseek4_models_pass(smollm2: Path, deepseek4_model: Path, judge: LlamaJudge) -> None:
    for path in (smollm2, deepseek4_model):
        assert loader_problems(read_header(path)) == ([], []), path
        assert judge.judge(path).runs, path


def test_deepseek4_shapes_in_its_own_hyperparameters(deepseek4_model: Path, tmp_path: Path, judge: LlamaJudge) -> None:
    """The query LoRA rank of DeepSeek-V4 (deepseek4.attention.q_lora_rank) sets attn_q_a's shape: the rule reads it as llama.cpp does."""
    changed = _u32(deepseek4_model, tmp_path / "q-lora.gguf", "deepseek4.attention.q_lora_rank", 32)
    refused, _ = loader_problems(read_header(changed))
    assert refused == ["tensor 'blk.0.attn_q_a.weight' has shape [128, 64]; llama.cpp expects [128, 32] (n_embd=128, n_lora_q=32)"]
    judgement = judge.judge(changed)
    assert not judgement.runs and "blk.0.attn_q_a.weight" in judgement.words


def test_a_bpe_tokenizer_without_merges(smollm2: Path, tmp_path: Path, judge: LlamaJudge) -> None:
    """SmolLM2's gpt2 tokenizer with its merges key renamed: llama.cpp cannot find the merges, and the rule says so."""
    renamed = _patched(smollm2, tmp_path / "no-merges.gguf", b"tokenizer.ggml.merges", b"tokenizer.ggml.merxes")
    refused, _ = loader_problems(read_header(renamed))
    assert refused == ["a 'gpt2' tokenizer without tokenizer.ggml.merges: llama.cpp refuses it (cannot find tokenizer merges)"]
    judgement = judge.judge(renamed)
    assert not judgement.runs and "cannot find tokenizer merges" in judgement.words


def test_another_llama_cpp_only_reports_the_versioned_rules(runtime_moe_model: Path, tmp_path: Path) -> None:
    renamed = _patched(runtime_moe_model, tmp_path / "renamed.gguf", b"blk.1.ffn_norm", b"blk.1.ffn_nxrm")
    other: LoaderTable = replace(loader_table(), llama_cpp_python="0.0.1")
    assert not other.follows_installed and loader_table().follows_installed
    assert architecture_problems(read_header(renamed), other)  # the rule still sees it; loader_problems reports it only


@pytest.mark.timeout(900)
def test_the_loader_table_is_what_the_pinned_llama_cpp_source_says(tmp_path: Path) -> None:
    """Regenerate conformance/llama-cpp-loader.json from the llama-cpp-python sdist (pip download, cached) and compare."""
    fresh = render(table(fetch_sdist(tmp_path)))
    assert fresh == LOADER_FILE.read_text(encoding="utf-8"), "run: python -m tests.llama_cpp_source conformance/llama-cpp-loader.json"
    assert json.loads(fresh)["llama_cpp_python"] == metadata.version("llama-cpp-python")  # the llama.cpp the tests judge with
