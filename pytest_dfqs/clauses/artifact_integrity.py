"""The artifact-integrity block: the file's SHA-256 against the digest it should have.

The expected digest comes from --dfqs-sha256, a checksums file, or, under
--dfqs-profile reference, the spec's published digest (`modelfile.integrity`).
A file whose size, modification time or inode changed between the start and the
end of the run fails the block: the certificate would describe another file.
"""

from __future__ import annotations

from pytest_dfqs.model import ModelUnderTest
from pytest_dfqs.modelfile.integrity import ExpectedDigest, identity_change
from pytest_dfqs.remote.source import RemoteOrigin
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
    if model.bytes_not_here() is not None and model.origin is not None and model.origin.stated_sha256 is not None:
        return _as_stated(expected, model.origin)
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


def _as_stated(expected: ExpectedDigest, origin: RemoteOrigin) -> Finding:
    """The expected digest against the one the Hub states for the resolved commit: what can be said without the bytes."""
    where = f"the Hub's LFS SHA-256 at commit {origin.commit}"
    evidence = {"expected": expected.digest, "stated": origin.stated_sha256, "source": expected.source, "stated_by": where, "bytes_read": 0}
    if origin.stated_sha256 != expected.digest:
        summary = f"the Hub states SHA-256 {origin.stated_sha256} ({where}), not the expected {expected.digest} (from {expected.source}):"
        return Finding("sha256", Status.NOT_MET, f"{summary} the file served is not the published one", evidence)
    summary = f"SHA-256 {expected.digest} (from {expected.source}) as stated by the Hub ({where}); the bytes were not hashed here"
    return Finding("sha256", Status.MET, summary, evidence)


def check_unchanged(model: ModelUnderTest) -> Finding | None:
    """At the end of the run: a file rewritten or replaced since the run began is not the file that was certified."""
    change = identity_change(model.identity, model.path) if model.identity is not None else None
    if change is None:
        return None
    return Finding(
        "sha256",
        Status.NOT_MET,
        f"the file changed during certification ({change}): what was checked is not what is on disk now; certify it again",
        {"identity_at_start": model.identity},
    )
