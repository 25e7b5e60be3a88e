"""The runtime client: llama.cpp's own words for a refusal, and the one file loaded alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_dfqs.runtime.client import ModelRejected, ModelRuntime, RuntimeOptions, llama_complaint

REFUSAL_LOG = """llama_model_loader: - type  f16:   16 tensors
create_tensor: loading tensor blk.0.ffn_norm.weight
llama_model_load: error loading model: check_tensor_dims: tensor 'blk.0.ffn_norm.weight' not found
llama_model_load_from_file_impl: failed to load model
"""
ABORT_LOG = """print_info: file size   = 0.50 MiB (16.05 BPW)
/tmp/pip-install-x/llama-cpp-python/vendor/llama.cpp/src/llama-model.cpp:1362: GGML_ASSERT(n_expert_used_max <= hparams.n_expert) failed
"""


@pytest.mark.parametrize(
    ("log", "complaint"),
    [
        (REFUSAL_LOG, "check_tensor_dims: tensor 'blk.0.ffn_norm.weight' not found"),
        (ABORT_LOG, "llama-model.cpp:1362: GGML_ASSERT(n_expert_used_max <= hparams.n_expert) failed"),
        ("llama_model_load: key not found in model: deepseek4.swiglu_clamp_exp\n", "key not found in model: deepseek4.swiglu_clamp_exp"),
        ("print_info: all is well\n", None),
    ],
)
def test_llama_cpps_own_sentence_is_quoted(log: str, complaint: str | None) -> None:
    assert llama_complaint(log) == complaint


def test_a_shard_is_loaded_without_its_siblings(split_model: Path) -> None:
    """Its other shard lies beside it, but llama.cpp sees only the one file: it cannot run alone."""
    runtime = ModelRuntime(split_model, RuntimeOptions(threads=2, ctx=512))
    try:
        with pytest.raises(ModelRejected, match="llama.cpp refuses to load this model: .*failed to load GGUF split"):
            runtime.loaded()
        assert runtime.alone_path().parent != split_model.parent and runtime.alone_path().is_symlink()
    finally:
        runtime.close()
    assert not runtime.alone_path().parent.exists()  # the folder of the link is gone with the runtime


def test_a_whole_model_loads_alone(runtime_moe_model: Path) -> None:
    runtime = ModelRuntime(runtime_moe_model, RuntimeOptions(threads=2, ctx=512))
    try:
        loaded = runtime.loaded()
        assert runtime.vocabulary is not None and runtime.vocabulary["n_vocab"] == loaded["n_vocab"]
        assert (runtime.workers_started, runtime.loads_requested) == (1, 1)
    finally:
        runtime.close()
