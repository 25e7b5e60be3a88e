"""DFQS-3.2: the model operates on the CPU, with llama.cpp, offload disabled.

The worker loads the model with n_gpu_layers = 0 and greedily generates from
a fixed prompt. The evidence is what a reader of the certificate needs to
believe it: the backend, load time, the worker's peak memory, and prompt and
decode throughput at the recorded thread count and context.
"""

from __future__ import annotations

from pytest_dfqs.model import ModelUnderTest
from pytest_dfqs.runtime.client import GENERATION_PROMPT, throughput
from pytest_dfqs.runtime.host import threads_text
from pytest_dfqs.verdict import Finding, Status

GENERATED_TOKENS = 32


def check_cpu_generation(model: ModelUnderTest) -> Finding:
    runtime = model.runtime()
    loaded = runtime.loaded()
    run = runtime.generate(GENERATION_PROMPT, GENERATED_TOKENS)
    stats = runtime.request("stats")
    rates = throughput(run)
    evidence = {
        "backend": runtime.backend,
        "system_info": loaded["system_info"],
        "load_seconds": loaded["load_seconds"],
        "peak_rss_bytes": stats["peak_rss_bytes"],
        "threads": runtime.options.threads,
        "ctx": runtime.options.ctx,
        "prompt_tokens": len(run["prompt_tokens"][0]),
        "generated_tokens": len(run["generated"][0]),
        "nonfinite_steps": run["nonfinite_steps"],
        **rates,
        "worker_pid": stats["pid"],
        "loads": stats["loads"],
    }
    if run["nonfinite_steps"] or len(run["generated"][0]) != GENERATED_TOKENS:
        return Finding(
            "cpu-generation",
            Status.NOT_MET,
            f"generation {runtime.where} produced non-finite logits at {run['nonfinite_steps']} of {GENERATED_TOKENS} steps",
            evidence,
        )
    return Finding(
        "cpu-generation",
        Status.MET,
        f"loaded in {loaded['load_seconds']:.2f} s and generated {GENERATED_TOKENS} tokens {runtime.where} at"
        f" {rates['decode_tokens_per_sec']:.1f} tok/s ({rates['prompt_tokens_per_sec']:.0f} tok/s prompt),"
        f" {threads_text(runtime.options.threads)}, peak RSS {stats['peak_rss_bytes'] / 2**20:.0f} MiB",
        evidence,
    )
