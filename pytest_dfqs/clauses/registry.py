"""The registry of implemented checks and the one way to run a check.

A check turns a model into a Finding. Whatever goes wrong inside becomes a
finding too: an invalid header is NOT MET with the header's own message, an
unexpected exception is ERROR (the check itself could not run). A check the
catalogue declares but this version does not implement is NOT EVALUATED.
`finding` runs a check at most once per model, keeping it in the model's cache.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_dfqs import __version__
from pytest_dfqs.catalogue import load_catalogue
from pytest_dfqs.evaluation.journal import Journal
from pytest_dfqs.model import ModelUnderTest
from pytest_dfqs.modelfile.header import HeaderError
from pytest_dfqs.runtime.client import RuntimeUnavailable
from pytest_dfqs.verdict import CONCLUSIVE, SEE, Finding, Status

from .artifact_integrity import check_sha256
from .cpu_operation import check_cpu_generation
from .evaluation_interface import check_identical_conditions, check_metrics_record
from .extended_context import check_declared_context, check_decode_past_64k
from .gpu_acceleration import check_gpu_offload
from .llama_cpp_compatibility import check_llama_cpp_load
from .long_context import check_long_context_curve
from .reference_profile import (
    check_active_parameters,
    check_file_size,
    check_host_memory,
    check_moe_architecture,
    check_sub_70gb,
    check_total_parameters,
)
from .routing_determinism import check_routing_determinism
from .routing_fidelity import check_routing_fidelity
from .routing_structure import check_router_structure
from .routing_trace import check_routing_trace
from .single_file import (
    check_gguf_header,
    check_llama_cpp_executes,
    check_llama_cpp_loads,
    check_loader_rules,
    check_no_split,
    check_standalone,
    check_tensor_layout,
    check_tensors_in_file,
)

CheckFunction = Callable[[ModelUnderTest], Finding]


CHECKS: dict[str, CheckFunction] = {
    "gguf-header": check_gguf_header,
    "tensor-layout": check_tensor_layout,
    "tensors-in-file": check_tensors_in_file,
    "no-split": check_no_split,
    "standalone": check_standalone,
    "loader-rules": check_loader_rules,
    "llama-cpp-loads": check_llama_cpp_loads,
    "llama-cpp-executes": check_llama_cpp_executes,
    "router-structure": check_router_structure,
    "declared-context": check_declared_context,
    "moe-architecture": check_moe_architecture,
    "active-parameters": check_active_parameters,
    "total-parameters": check_total_parameters,
    "file-size": check_file_size,
    "sub-70gb": check_sub_70gb,
    "host-memory": check_host_memory,
    "sha256": check_sha256,
    "cpu-generation": check_cpu_generation,
    "routing-determinism": check_routing_determinism,
    "routing-trace": check_routing_trace,
    "routing-fidelity": check_routing_fidelity,
    "llama-cpp-load": check_llama_cpp_load,
    "gpu-offload": check_gpu_offload,
    "decode-past-64k": check_decode_past_64k,
    "long-context-curve": check_long_context_curve,
    "metrics-record": check_metrics_record,
    "identical-conditions": check_identical_conditions,
}


HEADER_CHECK = "gguf-header"
HEADER_UNREADABLE = f"no readable GGUF header (see DFQS-3.1 {HEADER_CHECK})"


def run_check(check_id: str, model: ModelUnderTest) -> Finding:
    implementation = CHECKS.get(check_id)
    if implementation is None:
        return Finding(check_id, Status.NOT_EVALUATED, f"check {check_id!r} is not implemented in pytest-dfqs {__version__}")
    return guarded(check_id, model, implementation)


def guarded(check_id: str, model: ModelUnderTest, check: CheckFunction) -> Finding:
    """The check's finding; whatever goes wrong inside becomes one too, never an exception out of the test."""
    try:
        return check(model)
    except HeaderError as error:
        evidence = {"offset": error.offset, "field": error.field}
        if check_id == HEADER_CHECK:  # said once, here; every other check refers to it
            return Finding(check_id, Status.NOT_MET, f"invalid GGUF header: {error}", evidence)
        return Finding(check_id, Status.NOT_MET, HEADER_UNREADABLE, {**evidence, SEE: f"DFQS-3.1 {HEADER_CHECK}"})
    except RuntimeUnavailable as unavailable:
        return Finding(check_id, unavailable.status, str(unavailable), unavailable.evidence)
    except OSError as error:
        return Finding(check_id, Status.ERROR, f"could not read {model.path}: {error.strerror or error}")
    except Exception as error:  # the check itself broke: report it, never crash the session
        return Finding(check_id, Status.ERROR, f"the check could not run: {type(error).__name__}: {error}")


def finding(model: ModelUnderTest, check_id: str) -> Finding:
    """The check's finding on this model, run on first request and kept in the model's cache.

    A runtime check's decided finding also goes into the model's check journal, so that
    --dfqs-resume does not run it again on the same file under the same runtime settings.
    """
    if check_id not in model.findings:
        folder = model.eval_options.journal_dir
        if load_catalogue().checks[check_id].tier == "runtime" and folder is not None:
            model.findings[check_id] = _journaled(model, folder, check_id)
        else:
            model.findings[check_id] = run_check(check_id, model)
    return model.findings[check_id]


def _journaled(model: ModelUnderTest, folder: Path, check_id: str) -> Finding:
    """The finding from the check journal when a resumed run has it; else run, and journaled when decided."""
    try:
        journal = _journal(model, folder)
    except RuntimeUnavailable as refused:  # a journal of another file or other settings: nothing is reused, nothing run
        return Finding(check_id, refused.status, str(refused))
    return Finding.from_dict(journal.item("check", check_id, lambda: run_check(check_id, model).as_dict(), keep=_decided))


def _journal(model: ModelUnderTest, folder: Path) -> Journal:
    """The model's check journal, named by its path and keyed by the file's identity and the runtime settings."""
    if model.check_journal is None:
        options = model.runtime_options()
        file = str(model.path.resolve())
        conditions = {"file": file, **(model.identity or {}), "threads": options.threads, "ctx": options.ctx}
        name = hashlib.sha256(file.encode()).hexdigest()[:32]
        model.check_journal = Journal(folder / f"checks-{name}.jsonl", conditions, model.eval_options.resume)
    journal: Journal = model.check_journal
    return journal


def _decided(entry: dict[str, Any]) -> bool:
    """Only what the model decided is kept: an ERROR or a check that could not run is tried again."""
    return Status(entry["status"]) in CONCLUSIVE
