"""The reference profile: what sections 5, 9 and 14 say the reference artifact is.

These checks compare a model with DeepSeek-V4-Flash-IQ1_S-XL's published
figures, read as the spec writes them (`modelfile.units.read_quantity`): a
figure such as "13B" is met by what its written precision allows (12.5B to
13.5B); "61.6 GB" by 61.55 to 61.65 decimal gigabytes.
"""

from __future__ import annotations

from pytest_dfqs.model import ModelUnderTest
from pytest_dfqs.modelfile.units import WrittenQuantity, human_bytes, human_count, read_quantity
from pytest_dfqs.runtime.host import physical_memory
from pytest_dfqs.verdict import Finding, Status

GB = 10**9
REFERENCE_ACTIVE = "13B"
REFERENCE_TOTAL = "284B"
REFERENCE_SIZE = "61.6 GB"
ENVELOPE_GB = 70
MINIMUM_RAM_GB = 80


def check_moe_architecture(model: ModelUnderTest) -> Finding:
    facts = model.facts()
    evidence = {
        "expert_count": facts.expert_count,
        "expert_used_count": facts.expert_used_count,
        "routed_parameters": facts.routed_parameters,
    }
    if facts.is_moe and facts.expert_used_count and facts.routed_parameters:
        return Finding(
            "moe-architecture",
            Status.MET,
            f"Mixture-of-Experts: {facts.expert_used_count} of {facts.expert_count} experts per token",
            evidence,
        )
    return Finding(
        "moe-architecture",
        Status.NOT_MET,
        f"not a Mixture-of-Experts model: expert_count {facts.expert_count}, {facts.routed_parameters:,} routed parameters",
        evidence,
    )


def _claim_finding(check: str, what: str, value: int, claim: WrittenQuantity) -> Finding:
    evidence = {"measured": value, "claimed": claim.text, "admitted": [claim.low, claim.high]}
    text = f"{what}; the reference claims {claim.text}"
    return Finding(check, Status.MET if claim.admits(value) else Status.NOT_MET, text, evidence)


def _parameter_finding(check: str, what: str, value: int, claim: str) -> Finding:
    return _claim_finding(check, f"{what} {human_count(value)} ({value:,})", value, read_quantity(claim, "count"))


def check_active_parameters(model: ModelUnderTest) -> Finding:
    return _parameter_finding("active-parameters", "active parameters per token", model.facts().active_parameters, REFERENCE_ACTIVE)


def check_total_parameters(model: ModelUnderTest) -> Finding:
    return _parameter_finding("total-parameters", "total parameters", model.facts().total_parameters, REFERENCE_TOTAL)


def check_file_size(model: ModelUnderTest) -> Finding:
    size = model.path.stat().st_size
    return _claim_finding("file-size", f"file size {human_bytes(size)} ({size:,} bytes)", size, read_quantity(REFERENCE_SIZE, "bytes"))


def check_sub_70gb(model: ModelUnderTest) -> Finding:
    size = model.path.stat().st_size
    met = size < ENVELOPE_GB * GB
    return Finding(
        "sub-70gb",
        Status.MET if met else Status.NOT_MET,
        f"file size {human_bytes(size)} against the sub-{ENVELOPE_GB} GB envelope",
        {"bytes": size},
    )


def check_host_memory(model: ModelUnderTest) -> Finding:
    memory = physical_memory()
    met = memory >= MINIMUM_RAM_GB * GB
    return Finding(
        "host-memory",
        Status.MET if met else Status.NOT_MET,
        f"this machine has {memory / GB:.1f} GB RAM; the reference's minimum is {MINIMUM_RAM_GB} GB",
        {"bytes": memory},
    )
