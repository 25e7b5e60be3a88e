"""Checking one claim against one model file: a Finding that says what was claimed, what was found, and by which rule.

A number is met when the file's value lies in the interval the claim's written
precision allows (or its tolerance). Parameter counts are tried under each
documented counting convention; the evidence names the one that matched. A
score is met when its confidence interval meets the claimed interval; a
throughput claimed on other hardware is not comparable here (NOT APPLICABLE),
never false. A claim the eval tier decides is NOT EVALUATED below that tier.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gguf.constants import Keys, LlamaFileType

from pytest_dfqs.evaluation.reasoning import wilson_interval
from pytest_dfqs.model import ModelUnderTest
from pytest_dfqs.modelfile.facts import ParameterCount, parameter_counts
from pytest_dfqs.modelfile.integrity import parse_checksums
from pytest_dfqs.modelfile.units import WrittenQuantity, human_bytes, human_count
from pytest_dfqs.runtime.host import cpu_model, physical_memory
from pytest_dfqs.verdict import NEEDS_TIER, Finding, Status

from .claims_file import Claim, file_type_named, quantity
from .recipe import check_recipe, read_recipe

Outcome = tuple[Status, str, dict[str, Any]]  # status, what was found, evidence


def verify_claim(claim: Claim, model: ModelUnderTest, measured: dict[str, Any] | None = None, check_id: str | None = None) -> Finding:
    """The claim checked against the model; `measured` is what a higher tier measured (the metrics record, the fidelity figures)."""
    if claim.measured_by is not None and measured is None:
        needs = f"needs --dfqs-tier {claim.tier} (measured by check {claim.measured_by})"
        return _finding(claim, check_id, Status.NOT_EVALUATED, needs, {NEEDS_TIER: claim.tier})
    status, found, evidence = VERIFIERS[claim.kind](claim, model, measured or {})
    return _finding(claim, check_id, status, found, evidence)


def _finding(claim: Claim, check_id: str | None, status: Status, found: str, evidence: dict[str, Any]) -> Finding:
    head = {"fact": claim.fact, "claimed": claim.value, "source": claim.source, "where": claim.where}
    return Finding(check_id or claim.id, status, _summary(claim, status, found), {**head, **evidence})


def _summary(claim: Claim, status: Status, found: str) -> str:
    """What was found, then the claim as written: "file size 57.30 GB (...); contradicts the claim 61.6 GB (section 5)"."""
    claimed = claim.claimed + (f" ({claim.where})" if claim.where else "")
    if status == Status.MET:
        return f"{found}; matches the claim {claimed}"
    if status == Status.NOT_MET:
        return f"{found}; contradicts the claim {claimed}"
    return f"{found} (claimed: {claimed})"


def _admitted(wanted: WrittenQuantity) -> list[float | None]:
    """The claimed interval as JSON can hold it: an open end ("< 70 GB") is null, never -Infinity."""
    return [None if math.isinf(end) else end for end in (wanted.low, wanted.high)]


def _within(value: float, wanted: WrittenQuantity) -> dict[str, Any]:
    return {"measured": value, "admitted": _admitted(wanted)}


def _met(condition: bool) -> Status:
    return Status.MET if condition else Status.NOT_MET


def _parameters(claim: Claim, model: ModelUnderTest, record: dict[str, Any]) -> Outcome:
    wanted: WrittenQuantity = quantity(claim)
    which = claim.fact.removesuffix("_parameters")
    counts = parameter_counts(model.header())
    values = {count.convention: _count_of(count, which) for count in counts}
    evidence = {"counts": values, "admitted": _admitted(wanted)}
    matching = next((convention for convention, value in values.items() if wanted.admits(value)), None)
    if matching is not None:
        value = values[matching]
        return Status.MET, f"{which} parameters {human_count(value)} ({value:,}) counted {matching}", {**evidence, "convention": matching}
    every, *others = values.items()
    listed = ", ".join(f"{convention} {human_count(value)}" for convention, value in others)
    interval = f"{human_count(int(wanted.low))}-{human_count(int(wanted.high))}"
    found = f"{which} parameters {human_count(every[1])} ({every[1]:,}); no counting convention gives {interval} ({listed})"
    return Status.NOT_MET, found, evidence


def _count_of(count: ParameterCount, which: str) -> int:
    return count.active if which == "active" else count.total


def _count(claim: Claim, model: ModelUnderTest, record: dict[str, Any]) -> Outcome:
    facts = model.facts()
    values: dict[str, int | None] = {
        "expert_count": facts.expert_count,
        "expert_used_count": facts.expert_used_count,
        "expert_shared_count": (facts.expert_shared_count or 0) if facts.is_moe else None,
        "block_count": facts.block_count,
        "context_length": facts.context_length,
        "tensor_count": facts.tensor_count,
        "split_count": _split_count(model),
    }
    value, wanted = values[claim.fact], quantity(claim)
    name = claim.fact.replace("_", " ")
    if value is None:
        return Status.NOT_MET, f"the file declares no {name}", {"measured": None, "admitted": _admitted(wanted)}
    return _met(wanted.admits(value)), f"{name} {value:,}", _within(value, wanted)


def _split_count(model: ModelUnderTest) -> int:
    count = model.header().metadata.get(Keys.Split.LLM_KV_SPLIT_COUNT)
    return count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 1


def _bytes(claim: Claim, model: ModelUnderTest, record: dict[str, Any]) -> Outcome:
    wanted = quantity(claim)
    if claim.fact == "host_memory":
        memory = physical_memory()
        return _met(wanted.admits(memory)), f"this machine has {human_bytes(memory)} of RAM", _within(memory, wanted)
    size = model.path.stat().st_size
    return _met(wanted.admits(size)), f"file size {human_bytes(size)} ({size:,} bytes)", _within(size, wanted)


def _text(claim: Claim, model: ModelUnderTest, record: dict[str, Any]) -> Outcome:
    found = model.facts().architecture
    met = found is not None and found.lower() == str(claim.value).lower()
    return _met(met), f"general.architecture is {found!r}", {"measured": found}


def _bool(claim: Claim, model: ModelUnderTest, record: dict[str, Any]) -> Outcome:
    facts = model.facts()
    moe = bool(facts.is_moe and facts.routed_parameters)
    found = (
        f"a Mixture-of-Experts model: {facts.expert_used_count} of {facts.expert_count} experts per token"
        if moe
        else f"not a Mixture-of-Experts model: expert_count {facts.expert_count}, {facts.routed_parameters:,} routed parameters"
    )
    return _met(moe == claim.value), found, {"measured": moe}


def _file_type(claim: Claim, model: ModelUnderTest, record: dict[str, Any]) -> Outcome:
    wanted = file_type_named(str(claim.value))
    declared = model.header().metadata.get(Keys.General.FILE_TYPE)
    found = _file_type_name(declared)
    met = wanted is not None and declared == wanted.value
    return _met(met), f"general.file_type is {found}", {"measured": found, "expected": wanted.name if wanted else None}


def _file_type_name(declared: Any) -> str:
    if not isinstance(declared, int) or isinstance(declared, bool):
        return "not declared"
    try:
        return f"{LlamaFileType(declared).name} ({declared})"
    except ValueError:
        return f"{declared} (not a known file type)"


def _dtypes(claim: Claim, model: ModelUnderTest, record: dict[str, Any]) -> Outcome:
    found = {name: share.tensors for name, share in model.facts().dtypes.items()}
    wanted = {name.lower(): count for name, count in claim.value.items()}
    differing = {name: {"claimed": wanted.get(name, 0), "found": found.get(name, 0)} for name in sorted(found.keys() | wanted.keys())}
    differing = {name: pair for name, pair in differing.items() if pair["claimed"] != pair["found"]}
    listed = ", ".join(f"{name} {count}" for name, count in found.items())
    if not differing:
        return Status.MET, f"tensors per ggml type: {listed}", {"measured": found}
    wrong = "; ".join(f"{name} {pair['found']} (claimed {pair['claimed']})" for name, pair in differing.items())
    return Status.NOT_MET, f"tensors per ggml type differ: {wrong}", {"measured": found, "differing": differing}


def _digest(claim: Claim, model: ModelUnderTest, record: dict[str, Any]) -> Outcome:
    expected, origin = _claimed_digest(claim, model.path)
    if expected is None:
        return Status.NOT_EVALUATED, origin, {}
    actual = model.digest().sha256
    return _met(actual == expected), f"SHA-256 {actual}", {"measured": actual, "expected": expected, "expected_from": origin}


def _claimed_digest(claim: Claim, path: Path) -> tuple[str | None, str]:
    """The claimed digest and where it comes from; None and the reason when the checksums file is not beside the model."""
    if not claim.checksums:
        return str(claim.value).lower(), "the claims file"
    listing = path.parent / claim.checksums
    try:
        digests = parse_checksums(listing.read_text(encoding="utf-8"), str(listing))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        return None, f"the claimed digest is in {claim.checksums}, which could not be read beside the model ({error})"
    if path.name not in digests:
        return None, f"{listing} lists no digest for {path.name}"
    return digests[path.name], str(listing)


def _score(claim: Claim, model: ModelUnderTest, record: dict[str, Any]) -> Outcome:
    wanted = quantity(claim)
    score, (low, high), items = _measured_score(claim.fact, record)
    found = f"{claim.fact} {score:.3f} (95% interval {low:.3f}-{high:.3f}, {items} items at this budget)"
    return _met(wanted.overlaps(low, high)), found, {"measured": score, "interval": [low, high], "admitted": _admitted(wanted)}


def _measured_score(fact: str, record: dict[str, Any]) -> tuple[float, tuple[float, float], int]:
    """The score, its 95% Wilson interval, and how many items it rests on."""
    if fact == "reasoning_score":
        details = record["details"]["reasoning"]
        low, high = details["wilson_95"]
        return float(record[fact]), (float(low), float(high)), int(details["items"])
    details = record["details"]["code"]
    return float(record[fact]), wilson_interval(int(details["passed"]), int(details["problems"])), int(details["problems"])


def _throughput(claim: Claim, model: ModelUnderTest, record: dict[str, Any]) -> Outcome:
    wanted = quantity(claim)
    speed = record["details"]["throughput"]
    rounds = speed["per_round_decode_tokens_per_sec"] or [record["cpu_tokens_per_sec"]]
    low, high = min(rounds), max(rounds)
    here = cpu_model()
    evidence = {"measured": record["cpu_tokens_per_sec"], "rounds": [low, high], "claimed_on": claim.hardware, "this_machine": here}
    found = f"{record['cpu_tokens_per_sec']:.2f} tokens/s on this machine ({here})"
    if not _same_hardware(claim.hardware or "", here):
        return Status.NOT_APPLICABLE, f"{found}; the claim was measured on {claim.hardware}: not comparable here", evidence
    return _met(wanted.overlaps(low, high)), found, {**evidence, "admitted": _admitted(wanted)}


def _same_hardware(claimed: str, here: str) -> bool:
    """Comparable only when the claim names this machine's CPU model."""
    return bool(here) and here.lower() in claimed.lower()


def _tensor_types(claim: Claim, model: ModelUnderTest, record: dict[str, Any]) -> Outcome:
    return check_recipe(read_recipe(Path(claim.value)), model.header())


def _fidelity(claim: Claim, model: ModelUnderTest, measured: dict[str, Any]) -> Outcome:
    """The mean expert-set overlap against the reference model (routing-fidelity's evidence)."""
    wanted, overlap = quantity(claim), float(measured["mean_expert_overlap"])
    found = f"mean expert-set overlap {overlap:.3f} against {Path(measured['reference']).name}"
    return _met(wanted.admits(overlap)), found, {"measured": overlap, "admitted": _admitted(wanted), "reference": measured["reference"]}


VERIFIERS: dict[str, Callable[[Claim, ModelUnderTest, dict[str, Any]], Outcome]] = {
    "parameters": _parameters,
    "count": _count,
    "bytes": _bytes,
    "text": _text,
    "bool": _bool,
    "file_type": _file_type,
    "dtypes": _dtypes,
    "digest": _digest,
    "score": _score,
    "throughput": _throughput,
    "recipe": _tensor_types,
    "fidelity": _fidelity,
}
