"""DFQS-3.1: single-file GGUF execution, judged by llama.cpp before a weight is read and decided by its real load.

At the static tier a file is executable on its own when its header is valid
under llama.cpp's rules, its tensors are laid out where llama.cpp will look for
them, all of their data is inside this one file, it is not one shard of a split
model, it holds what a model needs to run (embeddings, output head, tokenizer),
and llama.cpp's own loader accepts it: where llama-cpp-python is installed, the
worker runs llama.cpp's dry run (the model with no_alloc and a context of the
runtime tier's size: hyperparameters and vocabulary read, every key and tensor
checked, the graph built, nothing allocated, no weight read). Only where no
worker can be had do the loader's rules, read from its source, judge instead.
At the runtime tier llama.cpp loads this one file from a folder holding
nothing else; a refusal or an abort of llama.cpp is NOT MET in its own words.
"""

from __future__ import annotations

import shlex
from typing import Any

from gguf.constants import GGUFValueType, Keys

from pytest_dfqs.model import ModelUnderTest
from pytest_dfqs.modelfile.header import ArrayValue, GGUFHeader, align_up
from pytest_dfqs.modelfile.split import SplitSet, merged_path, parse_shard_name, read_split_set
from pytest_dfqs.runtime.client import RuntimeNotEvaluated, RuntimeUnavailable, WorkerUnavailable
from pytest_dfqs.runtime.host import available_memory
from pytest_dfqs.verdict import JUDGE, Finding, Status

from .loader_rules import loader_problems, loader_table

MAX_LISTED = 10


INTEGER_TYPES = {
    GGUFValueType.UINT8,
    GGUFValueType.INT8,
    GGUFValueType.UINT16,
    GGUFValueType.INT16,
    GGUFValueType.UINT32,
    GGUFValueType.INT32,
    GGUFValueType.UINT64,
    GGUFValueType.INT64,
}
COUNT_KEYS = (
    Keys.LLM.BLOCK_COUNT,
    Keys.LLM.CONTEXT_LENGTH,
    Keys.LLM.EMBEDDING_LENGTH,
    Keys.LLM.EXPERT_COUNT,
    Keys.LLM.EXPERT_USED_COUNT,
    Keys.LLM.EXPERT_SHARED_COUNT,
)


def metadata_type_problems(header: GGUFHeader) -> list[str]:
    """Keys the checks rely on, stored with a type llama.cpp would not read."""
    types, offsets = header.metadata_types, header.metadata_offsets
    problems = []
    arch_key = Keys.General.ARCHITECTURE
    if arch_key in types and types[arch_key] != GGUFValueType.STRING:
        problems.append(f"{arch_key} (key at byte {offsets[arch_key]}) is {types[arch_key].name}; llama.cpp reads a STRING")
    keys = [template.format(arch=header.architecture) for template in COUNT_KEYS] if header.architecture else []
    keys += [Keys.Split.LLM_KV_SPLIT_COUNT, Keys.Split.LLM_KV_SPLIT_NO]
    for key in keys:
        value = header.metadata.get(key)
        if key in types and (types[key] not in INTEGER_TYPES or isinstance(value, int) and value < 0):
            shown = types[key].name if types[key] not in INTEGER_TYPES else f"negative ({value})"
            problems.append(f"{key} (key at byte {offsets[key]}) is {shown}; llama.cpp reads an unsigned integer")
    return problems


def check_gguf_header(model: ModelUnderTest) -> Finding:
    header = model.header()
    problems = metadata_type_problems(header)
    if problems:
        return Finding("gguf-header", Status.NOT_MET, problems[0], {"problems": problems})
    deviations = [d.describe() for d in header.deviations] + vocabulary_size_notes(header)
    return Finding(
        "gguf-header",
        Status.MET,
        f"GGUF v{header.version}: {len(header.metadata)} metadata keys, {len(header.tensors)} tensors,"
        f" data section at byte {header.data_offset}{_deviation_note(deviations)}",
        {
            "version": header.version,
            "metadata_keys": len(header.metadata),
            "tensors": len(header.tensors),
            "alignment": header.alignment,
            "data_offset": header.data_offset,
            "spec_deviations": deviations[:MAX_LISTED],
            "spec_deviation_count": len(deviations),
        },
    )


def vocabulary_size_notes(header: GGUFHeader) -> list[str]:
    """A declared `{arch}.vocab_size` that the token list contradicts: llama.cpp sizes the vocabulary by the list."""
    declared, tokens = header.arch_value(Keys.LLM.VOCAB_SIZE), header.metadata.get(Keys.Tokenizer.LIST)
    if type(declared) is not int or not isinstance(tokens, ArrayValue) or declared == tokens.count:
        return []
    key = Keys.LLM.VOCAB_SIZE.format(arch=header.architecture)
    return [f"{key} at byte {header.metadata_offsets[key]}: declares {declared:,} tokens, {Keys.Tokenizer.LIST} lists {tokens.count:,}"]


def _deviation_note(deviations: list[str]) -> str:
    """GGUF-spec strictness is information: llama.cpp executes such files, so DFQS-3.1 follows llama.cpp."""
    if not deviations:
        return ""
    more = f" and {len(deviations) - 1} more" if len(deviations) > 1 else ""
    return f"; informational, llama.cpp reads it anyway: {deviations[0]}{more}"


def layout_problems(header: GGUFHeader) -> list[str]:
    """Misaligned, overlapping or out-of-order tensors, in the order llama.cpp meets them."""
    problems = [
        f"tensor {t.name!r} (info at byte {t.info_offset}) has data offset {t.offset},"
        f" not a multiple of general.alignment {header.alignment}"
        for t in header.tensors
        if t.offset % header.alignment
    ]
    problems += _overlaps(header)
    if not problems:
        problems += _packing_problems(header)
    return problems


def _overlaps(header: GGUFHeader) -> list[str]:
    ordered = sorted(header.tensors, key=lambda t: t.offset)
    return [
        f"tensors {a.name!r} [{a.offset}, {a.offset + a.nbytes}) and {b.name!r} [{b.offset}, {b.offset + b.nbytes})"
        f" overlap (offsets relative to the data section at byte {header.data_offset})"
        for a, b in zip(ordered, ordered[1:])
        if b.offset < a.offset + a.nbytes
    ]


def _packing_problems(header: GGUFHeader) -> list[str]:
    """llama.cpp requires tensors packed in declaration order, each padded to the alignment."""
    expected = 0
    for tensor in header.tensors:
        if tensor.offset != expected:
            return [
                f"tensor {tensor.name!r} (info at byte {tensor.info_offset}) has data offset {tensor.offset},"
                f" llama.cpp expects {expected}: {tensor.type_name} {list(tensor.shape)} takes {tensor.nbytes} bytes"
                " and tensors must follow each other in declaration order"
            ]
        expected += align_up(tensor.nbytes, header.alignment)
    return []


def check_tensor_layout(model: ModelUnderTest) -> Finding:
    header = model.header()
    problems = layout_problems(header)
    evidence = {"alignment": header.alignment, "problems": problems[:MAX_LISTED], "problem_count": len(problems)}
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return Finding("tensor-layout", Status.NOT_MET, problems[0] + more, evidence)
    data_bytes = sum(t.nbytes for t in header.tensors)
    return Finding(
        "tensor-layout",
        Status.MET,
        f"{len(header.tensors)} tensors aligned to {header.alignment} bytes, packed without overlap ({data_bytes:,} bytes)",
        evidence,
    )


def check_tensors_in_file(model: ModelUnderTest) -> Finding:
    header = model.header()
    problem = _missing_data(header) or _missing_tensors(header)
    end = max((header.data_offset + t.offset + t.nbytes for t in header.tensors), default=header.data_offset)
    evidence = {"file_size": header.file_size, "data_offset": header.data_offset, "data_end": end, "tensors": len(header.tensors)}
    if problem:
        return Finding("tensors-in-file", Status.NOT_MET, problem, evidence)
    return Finding(
        "tensors-in-file",
        Status.MET,
        f"all {len(header.tensors)} tensors' data lies inside the file (ends at byte {end:,} of {header.file_size:,})",
        evidence,
    )


def _missing_data(header: GGUFHeader) -> str | None:
    if not header.tensors:
        return "the file declares no tensors: a vocabulary-only or metadata-only GGUF cannot execute"
    if header.data_offset > header.file_size:
        return f"the data section should start at byte {header.data_offset} but the file has only {header.file_size} bytes (truncated)"
    for tensor in header.tensors:
        end = header.data_offset + tensor.offset + tensor.nbytes
        if end > header.file_size:
            return (
                f"tensor {tensor.name!r} needs bytes up to {end:,} but the file ends at byte {header.file_size:,}:"
                " its data is not in this file (truncated download or a shard)"
            )
    return None


def _missing_tensors(header: GGUFHeader) -> str | None:
    declared = header.metadata.get(Keys.Split.LLM_KV_SPLIT_TENSORS_COUNT)
    if isinstance(declared, int) and declared != len(header.tensors):
        return f"split.tensors.count declares {declared} tensors for the model but this file holds {len(header.tensors)}"
    return None


def check_no_split(model: ModelUnderTest) -> Finding:
    """A shard is never a single file; the finding also checks its whole set and says how to make one file of it."""
    header = model.header()
    count = header.metadata.get(Keys.Split.LLM_KV_SPLIT_COUNT)
    number = header.metadata.get(Keys.Split.LLM_KV_SPLIT_NO)
    evidence: dict[str, Any] = {"split.count": count, "split.no": number, "file_name": model.path.name}
    name = parse_shard_name(model.path)
    if isinstance(count, int) and count > 1 or isinstance(number, int) and number > 0:
        shard = number + 1 if isinstance(number, int) else "?"
        what = f"this file is shard {shard} of {count} (split.no={number}, split.count={count})"
    elif name:
        what = f"the file name marks shard {name.number} of {name.count} ({model.path.name})"
    else:
        return Finding("no-split", Status.MET, "no split metadata and no shard file name", evidence)
    split_set = read_split_set(model.path)
    command = merge_command(split_set) if model.bytes_not_here() is None else None
    evidence["split_set"] = {**split_set.as_evidence(MAX_LISTED), "merge_command": command}
    if split_set.complete and command is None:  # a remote set whose headers alone are here
        advice = f"the set is complete ({split_set.count} shards, {split_set.tensor_count} tensors); --dfqs-download brings it to merge"
        return Finding("no-split", Status.NOT_MET, f"{what}: {advice}", evidence)
    return Finding("no-split", Status.NOT_MET, f"{what}: {_merge_advice(split_set, command)}", evidence)


def merge_command(split_set: SplitSet) -> str | None:
    """The command that makes one file of a complete set, beside its shards; None while the set is not complete."""
    if not split_set.complete or split_set.prefix is None or split_set.first is None:
        return None
    return f"dfqs-merge {shlex.quote(str(split_set.first))} -o {shlex.quote(str(merged_path(split_set.prefix)))}"


def _merge_advice(split_set: SplitSet, command: str | None) -> str:
    if command is not None:
        return f"the set is complete ({split_set.count} shards, {split_set.tensor_count} tensors); merge it into one file with `{command}`"
    problems = split_set.problems
    more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
    return f"the set is incomplete or inconsistent, so it cannot be merged as it is: {problems[0]}{more}"


def check_standalone(model: ModelUnderTest) -> Finding:
    header = model.header()
    missing = standalone_gaps(header)
    evidence = {"missing": missing}
    if missing:
        return Finding(
            "standalone",
            Status.NOT_MET,
            "the file cannot run alone, it lacks "
            + ", ".join(missing)
            + ": it looks like an auxiliary file (for example MTP/speculative-decoding weights) that needs its base model",
            evidence,
        )
    return Finding(
        "standalone", Status.MET, "architecture, transformer blocks, token embeddings, output head and tokenizer present", evidence
    )


def standalone_gaps(header: GGUFHeader) -> list[str]:
    """What a runnable model needs and this file does not have."""
    names = {t.name for t in header.tensors}
    needs = {
        Keys.General.ARCHITECTURE: header.architecture is not None,
        "{arch}.block_count": bool(header.arch_value(Keys.LLM.BLOCK_COUNT)),
        "blk.* tensors": any(name.startswith("blk.") for name in names),
        "token_embd.weight": "token_embd.weight" in names,
        "an output head (output.weight or tied token embeddings)": bool(names & {"output.weight", "token_embd.weight"}),
        Keys.Tokenizer.MODEL: Keys.Tokenizer.MODEL in header.metadata,
        Keys.Tokenizer.LIST: Keys.Tokenizer.LIST in header.metadata,
    }
    return [need for need, present in needs.items() if not present]


def check_loader_rules(model: ModelUnderTest) -> Finding:
    """The prediction of llama.cpp's refusals by the loader's own rules: the judge only where llama.cpp cannot judge.

    Where llama.cpp judged, the rules are not consulted (reading their table and applying them
    costs more than half a second on the reference's header); the differential tests measure
    how often they would have agreed.
    """
    header = model.header()
    judged = llama_cpp_verdict(model)
    if judged is not None:
        return Finding(
            "loader-rules",
            Status.NOT_APPLICABLE,
            "llama.cpp's own loader judged this file (llama-cpp-loads): its rules are not needed",
            {"llama_cpp_verdict": judged.value},
        )
    refused, unsure = loader_problems(header)
    table = loader_table()
    evidence = {"llama_cpp_python": table.llama_cpp_python, "problems": refused[:MAX_LISTED], "reported_only": unsure[:MAX_LISTED]}
    if refused:
        return Finding("loader-rules", Status.NOT_MET, refused[0], evidence)
    note = f"; another llama-cpp-python is installed, so only reported: {unsure[0]}" if unsure else ""
    return Finding(
        "loader-rules",
        Status.MET,
        f"nothing llama.cpp's loader (llama-cpp-python {table.llama_cpp_python}) refuses: known architecture and"
        f" tokenizer, required keys and tensors, key types, the tensors its loader creates and their shapes, block and"
        f" expert counts, tokenizer arrays, graph assertions, unique tokens{note}",
        evidence,
    )


def llama_cpp_verdict(model: ModelUnderTest) -> Status | None:
    """MET or NOT MET as llama.cpp's loader judged the header; None where it could not judge (no worker, our time limit)."""
    try:
        model.runtime().judged()
    except RuntimeUnavailable as failure:
        return failure.status if failure.status == Status.NOT_MET else None
    return Status.MET


def check_llama_cpp_loads(model: ModelUnderTest) -> Finding:
    """llama.cpp's own loader judges the header before a weight is read, in its dry run (as the memory preflight does).

    Only a header the plugin's bounded reader accepted reaches llama.cpp, and only in the worker:
    a crash there is the file's fault, quoted, never the pytest process's. Where no worker can
    be had (llama-cpp-python not installed, or it cannot start) the rules decide, and this says so.
    """
    model.header()
    runtime = model.runtime()
    try:
        plan = runtime.judged()
    except WorkerUnavailable as unavailable:
        return Finding(
            "llama-cpp-loads",
            Status.NOT_APPLICABLE,
            f"llama.cpp cannot judge the file here, the rules (loader-rules) decide: {unavailable.reason}",
            {JUDGE: "the rules accept it, no llama.cpp here", "reason": unavailable.reason},
        )
    identity = runtime.identity or {}
    return Finding(
        "llama-cpp-loads",
        Status.MET,
        f"llama.cpp's loader (llama-cpp-python {runtime.llama_cpp_python}) accepted every key and tensor and built the graph"
        f" of a {plan.ctx:,}-token context; no weight was read: {identity.get('description')}, {identity.get('n_params', 0):,} parameters",
        {
            JUDGE: "llama.cpp accepts it, no weight read",
            "llama_cpp_python": runtime.llama_cpp_python,
            "model": identity,
            "memory_plan": plan.evidence(available_memory()),
        },
    )


def check_llama_cpp_executes(model: ModelUnderTest) -> Finding:
    """llama.cpp's loader is the judge: its dry run, then the whole model, from a folder holding only this file."""
    runtime = model.runtime()
    try:
        loaded = runtime.loaded()
    except RuntimeNotEvaluated as skipped:
        if runtime.identity is None:
            raise
        return Finding(
            "llama-cpp-executes",
            Status.NOT_EVALUATED,
            f"llama.cpp read the hyperparameters and the {runtime.identity['n_vocab']:,}-token vocabulary and, in its dry run"
            f" without weights, accepted every tensor and built the graph; the full load was not attempted: {skipped}",
            {"dry_run": runtime.identity, **skipped.evidence},
        )
    alone = runtime.alone_path() != model.path
    evidence = {
        "dry_run": runtime.identity,
        "loaded_alone": alone,
        "description": loaded["description"],
        "n_params": loaded["n_params"],
        "load_seconds": loaded["load_seconds"],
        "system_info": loaded["system_info"],
    }
    where = "from a folder holding nothing else" if alone else "where it lies (this system has no symbolic links)"
    return Finding(
        "llama-cpp-executes",
        Status.MET,
        f"llama.cpp loaded this one file {where}: {loaded['description']}, {loaded['n_params']:,} parameters,"
        f" in {loaded['load_seconds']:.2f} s {runtime.where}",
        evidence,
    )
