"""DFQS-3.6: GPU acceleration MAY be used. Informational only.

A GPU run is compared with the CPU run only where the installed llama.cpp can
offload and a device is present; otherwise the clause is NOT APPLICABLE and
says which of the two is missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .verdict import Finding, Status

if TYPE_CHECKING:
    from .model import ModelUnderTest


def check_gpu_offload(model: ModelUnderTest) -> Finding:
    loaded = model.runtime().loaded()
    if not loaded["gpu_offload_supported"]:
        return Finding("gpu-offload", Status.NOT_APPLICABLE,
                       "this llama.cpp build has no GPU backend (llama_supports_gpu_offload() is false): CPU only",
                       {"system_info": loaded["system_info"]})
    return Finding("gpu-offload", Status.NOT_EVALUATED,
                   "this llama.cpp build can offload, but the CPU/GPU top-1 comparison is not implemented yet",
                   {"system_info": loaded["system_info"]})
