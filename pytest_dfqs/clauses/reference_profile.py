"""The reference profile: what sections 5, 9, 14 and 15 say the reference artifact is.

The figures are not written here: they are the clause-tagged claims of the
reference's claims file (conformance/claims/deepseek-v4-flash-iq1_s-xl.toml),
checked by the same code as any claim (`claims.verify`). "13B" is met by what
its written precision allows (12.5B to 13.5B) under any documented parameter
counting convention; "61.6 GB" by 61.55 to 61.65 decimal gigabytes.
"""

from __future__ import annotations

from functools import cache

from pytest_dfqs.claims.claims_file import REFERENCE_CLAIMS, ClaimsFile, read_claims_file
from pytest_dfqs.claims.verify import verify_claim
from pytest_dfqs.model import ModelUnderTest
from pytest_dfqs.modelfile.integrity import ExpectedDigest
from pytest_dfqs.verdict import Finding

DIGEST_CLAUSE = "DFQS-AI.1"


@cache
def reference_claims() -> ClaimsFile:
    return read_claims_file(REFERENCE_CLAIMS)


def reference_digest() -> ExpectedDigest:
    """The published SHA-256 of the reference artifact, which the profile expects."""
    claim = reference_claims().for_clause(DIGEST_CLAUSE)
    return ExpectedDigest(str(claim.value), f"the DFQS v1.0 artifact-integrity block ({reference_claims().about})")


def _reference(check_id: str, clause_id: str, model: ModelUnderTest) -> Finding:
    return verify_claim(reference_claims().for_clause(clause_id), model, check_id=check_id)


def check_moe_architecture(model: ModelUnderTest) -> Finding:
    return _reference("moe-architecture", "DFQS-5.1", model)


def check_active_parameters(model: ModelUnderTest) -> Finding:
    return _reference("active-parameters", "DFQS-5.2", model)


def check_total_parameters(model: ModelUnderTest) -> Finding:
    return _reference("total-parameters", "DFQS-5.3", model)


def check_file_size(model: ModelUnderTest) -> Finding:
    model.header()  # a file that is not a GGUF is no model of any size (its HeaderError refers to DFQS-3.1)
    return _reference("file-size", "DFQS-5.4", model)


def check_sub_70gb(model: ModelUnderTest) -> Finding:
    model.header()
    return _reference("sub-70gb", "DFQS-9.1", model)


def check_host_memory(model: ModelUnderTest) -> Finding:
    return _reference("host-memory", "DFQS-14.1", model)
