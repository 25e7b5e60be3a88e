"""Artifact integrity: streaming SHA-256, its cache, and expected digests.

Hashing a 60 GB model takes most of a minute, so digests are cached, keyed by
path, size, modification time and inode: a re-run of an unchanged file reads
no data at all. Expected digests come from --dfqs-sha256, a sha256sum-style
checksums file, or the spec's published digest of the reference artifact.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

CHUNK_BYTES = 8 << 20
HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
CHECKSUM_LINE = re.compile(r"(?P<digest>[0-9a-fA-F]{64}) [ *](?P<name>.+)")

Progress = Callable[[int, int, float], None]  # bytes done, bytes in all, seconds so far


class DigestCache(Protocol):
    """Where digests are kept between runs."""

    def get(self, key: str, default: Any) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...


class DigestStore:
    """Digests as one small JSON file per model path in a folder of pytest's cache, never beside the model.

    Written to a temporary file and renamed into place, so that two sessions
    hashing at once never leave half a file; an entry that cannot be read (or
    is not what this code writes) counts as absent and is written anew.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, key: str) -> Path:
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()}.json"

    def get(self, key: str, default: Any) -> Any:
        try:
            return json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return default

    def set(self, key: str, value: Any) -> None:
        try:  # a cache that cannot be written costs a re-hash next time, nothing more
            handle = tempfile.NamedTemporaryFile("w", dir=self.folder, suffix=".tmp", delete=False, encoding="utf-8")
        except OSError:
            return
        try:
            with handle:
                json.dump(value, handle)
            os.replace(handle.name, self._path(key))
        except OSError:
            Path(handle.name).unlink(missing_ok=True)


@dataclass(frozen=True)
class ExpectedDigest:
    digest: str
    source: str


@dataclass(frozen=True)
class Digest:
    sha256: str
    bytes_read: int
    cached: bool


def validate_sha256(value: str) -> str:
    """A 64-digit hex digest, lower-cased; ValueError says what is wrong."""
    if not HEX_DIGEST.fullmatch(value.strip()):
        raise ValueError(f"{value!r} is not a SHA-256 digest (64 hexadecimal digits)")
    return value.strip().lower()


def parse_checksums(text: str, source: str) -> dict[str, str]:
    """File name -> digest from `sha256sum` output; ValueError names the bad line."""
    digests: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = CHECKSUM_LINE.fullmatch(line.rstrip())
        if not match:
            raise ValueError(f"{source}:{number}: expected '<64 hex digits>  <file name>', found {line[:80]!r}")
        digests[Path(match["name"]).name] = match["digest"].lower()
    return digests


def expected_digest(
    path: Path, sha256: str | None, checksums: dict[str, str] | None, checksums_source: str, reference: ExpectedDigest | None
) -> ExpectedDigest | None:
    """The digest the file must have, and where that expectation comes from; `reference` is the profile's, if one is in force."""
    if sha256:
        return ExpectedDigest(sha256, "--dfqs-sha256")
    if checksums and path.name in checksums:
        return ExpectedDigest(checksums[path.name], checksums_source)
    return reference


def file_identity(path: Path) -> dict[str, int]:
    """Size, modification time and inode: what changes when a file is rewritten or replaced."""
    stat = os.stat(path)
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "inode": stat.st_ino}


def identity_change(before: dict[str, int], path: Path) -> str | None:
    """How the file at `path` differs from `before` ("size 528736 -> 528737, ..."); None when it is the same file, unchanged."""
    try:
        after = file_identity(path)
    except OSError as error:
        return f"it can no longer be read ({error.strerror or error})"
    changed = [f"{key} {before[key]} -> {after[key]}" for key in before if before[key] != after[key]]
    return ", ".join(changed) or None


def _cache_key(path: Path) -> tuple[str, dict[str, int]]:
    return f"dfqs/sha256/{path.resolve()}", file_identity(path)


def file_sha256(path: Path, cache: DigestCache | None = None, progress: Progress | None = None) -> Digest:
    """The file's SHA-256, from the cache when the file is unchanged."""
    key, identity = _cache_key(path)
    if cache is not None:
        entry = cache.get(key, None)
        if isinstance(entry, dict) and entry.get("identity") == identity and HEX_DIGEST.fullmatch(str(entry.get("sha256"))):
            return Digest(entry["sha256"], 0, cached=True)
    digest = hash_stream(path, identity["size"], progress)
    if cache is not None:
        cache.set(key, {"identity": identity, "sha256": digest.sha256})
    return digest


def hash_stream(path: Path, size: int, progress: Progress | None = None) -> Digest:
    """Hash the file in large chunks into one reused buffer (hashlib uses SHA-NI)."""
    hasher = hashlib.sha256()
    buffer = bytearray(CHUNK_BYTES)
    view = memoryview(buffer)
    done = 0
    started = last_report = time.monotonic()
    with open(path, "rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            hasher.update(view[:count])
            done += count
            if progress is not None and time.monotonic() - last_report >= 1.0:
                last_report = time.monotonic()
                progress(done, size, last_report - started)
    if progress is not None:
        progress(done, size, time.monotonic() - started)
    return Digest(hasher.hexdigest(), done, cached=False)
