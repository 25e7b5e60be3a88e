"""Runtime and eval tier speed: worker decode against a bare llama-cpp-python loop; both tiers on SmolLM2.

Run with: pytest benchmarks/ -m benchmark
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_dfqs.runtime.client import GENERATION_PROMPT, ModelRuntime, RuntimeOptions, throughput

pytestmark = pytest.mark.benchmark
THREADS = 2
CTX = 2048
TOKENS = 64


def bare_decode_rate(path: Path) -> float:
    """Tokens per second of llama-cpp-python's own greedy loop, prompt excluded."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(path), n_ctx=CTX, n_threads=THREADS, n_threads_batch=THREADS, n_gpu_layers=0, verbose=False)
    prompt = llm.tokenize(GENERATION_PROMPT.encode())
    produced = 0
    started = None
    for _ in llm.generate(prompt, temp=0.0, top_k=1):
        produced += 1
        if produced == 1:
            started = time.perf_counter()  # the first token comes with the prompt's evaluation
        if produced == TOKENS:
            break
    return (produced - 1) / (time.perf_counter() - started)


def test_worker_decode_matches_a_bare_loop(benchmark, smollm2: Path) -> None:
    runtime = ModelRuntime(smollm2, RuntimeOptions(THREADS, CTX))
    try:
        runtime.loaded()
        runtime.generate(GENERATION_PROMPT, 8)  # warm-up
        rates: list[float] = []

        def one_round() -> None:
            rates.append(throughput(runtime.generate(GENERATION_PROMPT, TOKENS))["decode_tokens_per_sec"])

        benchmark.pedantic(one_round, rounds=5, iterations=1)
        worker = max(rates)  # best of 5, as the bare loop's best of 5
    finally:
        runtime.close()
    bare = max(bare_decode_rate(smollm2) for _ in range(5))
    ratio = worker / bare
    benchmark.extra_info.update({"worker_tok_s": worker, "bare_tok_s": bare, "ratio": ratio})
    print(f"\nworker {worker:.1f} tok/s, bare llama-cpp-python {bare:.1f} tok/s, ratio {ratio:.2f}")
    assert ratio >= 0.9


def _certify(tmp_path: Path, *args: str) -> tuple[float, str]:
    command = [sys.executable, "-m", "pytest", *args, "-p", "no:cacheprovider", "-q"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    return time.perf_counter() - started, done.stdout


@pytest.mark.parametrize(
    ("tier", "extra", "limit_s", "verdict"),
    [("runtime", (), 180, "INCOMPLETE"), ("eval", ("--dfqs-eval-budget=quick",), 600, "CONFORMANT")],  # runtime: 11.1, 11.2 undecided
)
def test_tier_on_smollm2(benchmark, smollm2: Path, tmp_path: Path, tier: str, extra: tuple[str, ...], limit_s: int, verdict: str) -> None:
    seconds, output = benchmark.pedantic(
        _certify, args=(tmp_path, f"--dfqs-model={smollm2}", f"--dfqs-tier={tier}", *extra), rounds=1, iterations=1
    )
    benchmark.extra_info["seconds"] = seconds
    print(f"\n{tier} tier {' '.join(extra)} on SmolLM2-135M: {seconds:.1f} s")
    assert f"verdict: {verdict} at tier {tier}" in output, output
    assert seconds < limit_s
