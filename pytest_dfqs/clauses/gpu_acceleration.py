"""DFQS-3.6: GPU acceleration MAY be used. Informational only.

Where the installed llama.cpp can offload and a GPU device is present, the
model is loaded a second time with every layer offloaded, in a worker of its
own, and its greedy tokens are compared with the CPU run's on the same
prompt. Otherwise the clause is NOT APPLICABLE and says which is missing.
"""

from __future__ import annotations

from typing import Any

from pytest_dfqs.model import ModelUnderTest
from pytest_dfqs.runtime.client import GENERATION_PROMPT, ModelRuntime
from pytest_dfqs.runtime.rpc import rpc_backend_installed
from pytest_dfqs.verdict import Finding, Status

from .cpu_operation import GENERATED_TOKENS

OFFLOAD_ALL = -1


def check_gpu_offload(model: ModelUnderTest) -> Finding:
    loaded = model.runtime().loaded()
    if not loaded["gpu_offload_supported"]:
        return Finding(
            "gpu-offload",
            Status.NOT_APPLICABLE,
            "this llama.cpp build has no GPU backend (llama_supports_gpu_offload() is false): CPU only",
            {"system_info": loaded["system_info"]},
        )
    if not loaded["gpu_devices"]:
        how = " (its RPC backend, to rpc-servers: --dfqs-rpc)" if rpc_backend_installed() else ""
        return Finding("gpu-offload", Status.NOT_APPLICABLE, f"this llama.cpp build can offload{how}, but no GPU device is present")
    return compare_offloaded(model)


def compare_offloaded(model: ModelUnderTest) -> Finding:
    """Greedy tokens of a fully offloaded load against the CPU load, on the CPU check's prompt."""
    cpu = model.runtime().generate(GENERATION_PROMPT, GENERATED_TOKENS)
    offloaded = ModelRuntime(model.path, model.runtime_options(), n_gpu_layers=OFFLOAD_ALL)
    try:
        devices = offloaded.loaded()["gpu_devices"]
        gpu = offloaded.generate(GENERATION_PROMPT, GENERATED_TOKENS)
    finally:
        offloaded.close()
    return offload_finding(cpu, gpu, devices)


def offload_finding(cpu: dict[str, Any], gpu: dict[str, Any], devices: list[str]) -> Finding:
    cpu_tokens, gpu_tokens = cpu["generated"][0], gpu["generated"][0]
    agree = next((step for step, (a, b) in enumerate(zip(cpu_tokens, gpu_tokens)) if a != b), len(cpu_tokens))
    evidence = {"devices": devices, "cpu_tokens": cpu_tokens, "offloaded_tokens": gpu_tokens, "agreeing_prefix": agree}
    if agree < len(cpu_tokens):
        gap = cpu["top2_gaps"][0][agree]
        return Finding(
            "gpu-offload",
            Status.NOT_MET,
            f"offloaded top-1 tokens differ from the CPU's at step {agree} of {len(cpu_tokens)}"
            f" ({cpu_tokens[agree]} vs {gpu_tokens[agree]}, CPU top-2 gap {gap:.3g})",
            evidence,
        )
    return Finding(
        "gpu-offload",
        Status.MET,
        f"fully offloaded ({', '.join(devices) or 'no GPU device'}) the model gives the CPU's {len(cpu_tokens)} greedy tokens",
        evidence,
    )
