"""The reference profile: what sections 5, 9 and 14 say the reference artifact is.

These checks compare a model with DeepSeek-V4-Flash-IQ1_S-XL's published
figures. A figure such as "13B" is met when the measured value rounds to it
(12.5B to 13.5B); sizes are decimal gigabytes, as the spec writes them.
"""

from __future__ import annotations

from pytest_dfqs.model import ModelUnderTest
from pytest_dfqs.modelfile.units import human_bytes, human_count
from pytest_dfqs.runtime.host import physical_memory
from pytest_dfqs.verdict import Finding, Status

GB = 10**9
BILLION = 10**9
REFERENCE_ACTIVE_B = 13
REFERENCE_TOTAL_B = 284
REFERENCE_SIZE_GB = 61.6
ENVELOPE_GB = 70
MINIMUM_RAM_GB = 80


def rounds_to(value: float, claim: float, decimals: int) -> bool:
    """Whether `value` is what a figure written with `decimals` decimals claims."""
    return round(value, decimals) == round(claim, decimals)


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


def _parameter_finding(check: str, what: str, value: int, claim_b: int) -> Finding:
    evidence = {"measured": value, "claimed": claim_b * BILLION}
    text = f"{what} {human_count(value)} ({value:,}); the reference claims {claim_b}B"
    return Finding(check, Status.MET if rounds_to(value / BILLION, claim_b, 0) else Status.NOT_MET, text, evidence)


def check_active_parameters(model: ModelUnderTest) -> Finding:
    return _parameter_finding("active-parameters", "active parameters per token", model.facts().active_parameters, REFERENCE_ACTIVE_B)


def check_total_parameters(model: ModelUnderTest) -> Finding:
    return _parameter_finding("total-parameters", "total parameters", model.facts().total_parameters, REFERENCE_TOTAL_B)


def check_file_size(model: ModelUnderTest) -> Finding:
    size = model.path.stat().st_size
    met = rounds_to(size / GB, REFERENCE_SIZE_GB, 1)
    return Finding(
        "file-size",
        Status.MET if met else Status.NOT_MET,
        f"file size {human_bytes(size)} ({size:,} bytes); the reference claims {REFERENCE_SIZE_GB} GB",
        {"bytes": size},
    )


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
