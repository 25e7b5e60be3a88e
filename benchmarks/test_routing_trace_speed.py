"""Golden traces and fidelity: what they cost against the runtime tier's own passes, in one process.

- recording a trace costs at most 15% more than the routing-determinism check's
  reference run of the same prompts (the extra: top-k log-probabilities and the file);
- a fidelity comparison costs about two runtime passes (start, load and trace
  each model once), not more.

Run with: pytest benchmarks/test_routing_trace_speed.py -m benchmark -s
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.measure import best_of
from pytest_dfqs.clauses.routing_determinism import Load, _trace
from pytest_dfqs.clauses.routing_fidelity import check_routing_fidelity
from pytest_dfqs.clauses.routing_trace import TRACE_PROMPTS, record_trace, trace_runs
from pytest_dfqs.model import ModelUnderTest, TraceOptions
from pytest_dfqs.modelfile.demo import TinyModelSpec, write_model
from pytest_dfqs.runtime.client import ModelRuntime, RuntimeOptions
from tests.tiny_deepseek4 import write_tiny_deepseek4

pytestmark = pytest.mark.benchmark
ROUNDS = 5


@pytest.fixture(scope="module")
def deepseek4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("speed") / "tiny-deepseek4.gguf"
    write_tiny_deepseek4(path, hash_layer_count=1)
    return path


def test_recording_a_trace_costs_at_most_15_percent_more_than_the_reference_run(benchmark, deepseek4: Path, tmp_path: Path) -> None:
    model = ModelUnderTest(deepseek4, deepseek4.name, threads=2, ctx=1024, trace_options=TraceOptions(record=tmp_path / "t.json"))
    try:
        runtime = model.runtime()
        runtime.loaded()
        model.digest()  # hashed once, as the runtime tier has by then
        reference = best_of(ROUNDS, lambda: [_trace(runtime, [prompt], 2, Load("reference")) for prompt in TRACE_PROMPTS])
        recording = benchmark.pedantic(lambda: best_of(ROUNDS, lambda: record_trace(model, tmp_path / "t.json")), rounds=1, iterations=1)
    finally:
        model.close()
    ratio = recording / reference
    benchmark.extra_info.update({"reference_s": reference, "recording_s": recording, "ratio": ratio})
    print(f"\nreference run {reference * 1000:.0f} ms, recording the trace {recording * 1000:.0f} ms: ratio {ratio:.2f}")
    assert ratio <= 1.15


def runtime_pass(path: Path) -> None:
    """What one model costs the runtime tier's trace: a worker started, the model loaded, the trace prompts run."""
    runtime = ModelRuntime(path, RuntimeOptions(threads=2, ctx=1024))
    try:
        trace_runs(runtime)
    finally:
        runtime.close()


def test_a_fidelity_comparison_costs_about_two_runtime_passes(benchmark, tmp_path: Path) -> None:
    import ctypes

    import llama_cpp

    base, quantized = tmp_path / "f16.gguf", tmp_path / "q4_0.gguf"
    write_model(base, TinyModelSpec(n_embd=256, n_ff=256, context_length=4096), name="wide-moe")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = 2  # LLAMA_FTYPE_MOSTLY_Q4_0
    assert llama_cpp.llama_model_quantize(str(base).encode(), str(quantized).encode(), ctypes.byref(params)) == 0
    passes = best_of(ROUNDS, lambda: (runtime_pass(base), runtime_pass(quantized)))

    def compare() -> None:
        model = ModelUnderTest(quantized, quantized.name, threads=2, ctx=1024, trace_options=TraceOptions(reference=base))
        try:
            check_routing_fidelity(model)
        finally:
            model.close()

    fidelity = benchmark.pedantic(lambda: best_of(ROUNDS, compare), rounds=1, iterations=1)
    ratio = fidelity / passes
    benchmark.extra_info.update({"two_passes_s": passes, "fidelity_s": fidelity, "ratio": ratio})
    print(f"\ntwo runtime passes {passes * 1000:.0f} ms, a fidelity comparison {fidelity * 1000:.0f} ms: ratio {ratio:.2f}")
    assert ratio <= 1.25
