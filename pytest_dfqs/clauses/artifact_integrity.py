"""The artifact-integrity block: the file's SHA-256 against the digest it should have.

The expected digest comes from --dfqs-sha256, a checksums file, or, under
--dfqs-profile reference, the spec's published digest (`modelfile.integrity`).
"""

from __future__ import annotations

from pytest_dfqs.model import ModelUnderTest
from pytest_dfqs.verdict import Finding, Status


def check_sha256(model: ModelUnderTest) -> Finding:
    expected = model.expected_digest()
    checksums = model.integrity.checksums
    if expected is None and checksums is not None:
        return Finding(
            "sha256",
            Status.NOT_MET,
            f"{model.integrity.checksums_source} has no entry for {model.path.name}"
            f" ({len(checksums)} entries: {', '.join(sorted(checksums)[:5])})",
        )
    if expected is None:
        return Finding(
            "sha256",
            Status.NOT_APPLICABLE,
            "no expected digest: pass --dfqs-sha256 HEX or --dfqs-checksums FILE"
            " (the reference digest applies under --dfqs-profile reference)",
        )
    digest = model.digest()
    evidence = {
        "expected": expected.digest,
        "actual": digest.sha256,
        "source": expected.source,
        "cached": digest.cached,
        "bytes_read": digest.bytes_read,
    }
    if digest.sha256 != expected.digest:
        return Finding(
            "sha256",
            Status.NOT_MET,
            f"SHA-256 mismatch: expected {expected.digest} (from {expected.source}), the file has {digest.sha256}",
            evidence,
        )
    return Finding("sha256", Status.MET, f"SHA-256 {digest.sha256} matches {expected.source}", evidence)
