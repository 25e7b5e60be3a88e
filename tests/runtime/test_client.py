"""The runtime client: llama.cpp's own words for a refusal, and the one file loaded alone."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from pytest_dfqs.runtime.client import ModelRejected, ModelRuntime, RuntimeOptions, WorkerUnavailable, llama_complaint
from tests.machine_speed import llama_threads
from tests.test_interrupts import processes_with

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
    runtime = ModelRuntime(split_model, RuntimeOptions(threads=llama_threads(), ctx=512))
    try:
        with pytest.raises(ModelRejected, match="llama.cpp refuses to load this model: .*failed to load GGUF split"):
            runtime.loaded()
        assert runtime.alone_path().parent != split_model.parent and runtime.alone_path().is_symlink()
    finally:
        runtime.close()
    assert not runtime.alone_path().parent.exists()  # the folder of the link is gone with the runtime


def test_a_whole_model_loads_alone(runtime_moe_model: Path) -> None:
    runtime = ModelRuntime(runtime_moe_model, RuntimeOptions(threads=llama_threads(), ctx=512))
    try:
        loaded = runtime.loaded()
        assert runtime.identity is not None and runtime.identity["n_vocab"] == loaded["n_vocab"]  # the dry run read the vocabulary
        assert (runtime.workers_started, runtime.loads_requested) == (1, 1)
    finally:
        runtime.close()


@pytest.mark.timeout(60)
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds leftover processes through /proc")
def test_a_worker_whose_first_line_is_not_its_ready_line_could_not_start(
    runtime_moe_model: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Something prints before the worker takes over its output (a sitecustomize here): no worker can be had, in one line,
    and the process started is stopped, not left running beside pytest."""
    (tmp_path / "sitecustomize.py").write_text('print("hello from sitecustomize")\n')
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    marker = str(uuid.uuid4())
    monkeypatch.setenv("DFQS_TEST_RUN", marker)  # inherited by the worker: how it is found below
    runtime = ModelRuntime(runtime_moe_model, RuntimeOptions(threads=llama_threads(), ctx=512))
    try:
        with pytest.raises(WorkerUnavailable) as raised:
            runtime.judged()
        assert raised.value.reason == (
            "the llama.cpp worker could not start (its first line is not its ready line: b'hello from sitecustomize')"
        )
        assert runtime.workers_started == 1
    finally:
        runtime.close()
    assert processes_with(marker) == []  # the process that could not start is stopped with the runtime
