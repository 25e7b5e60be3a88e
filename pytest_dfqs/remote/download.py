"""--dfqs-download: a remote file brought whole into the cache, resumable, hashed while it streams.

The bytes go to `NAME.download` beside a record of what is being downloaded (URL, size, the server's validator);
a later run resumes it when the server still serves the same file, else starts again. Free space is checked
before the first byte. The SHA-256 is computed while the bytes stream (a resumed download first hashes what it
has), compared with a digest the source states (the Hub's), and the file renamed into place only when whole:
`NAME` with its record `NAME.json` saying it is complete. Nothing half-written ever carries the file's name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_dfqs.modelfile.integrity import file_identity, hash_stream
from pytest_dfqs.modelfile.units import human_bytes

from .ranges import RangeReader, RemoteError

DOWNLOAD_CHUNK = 8 << 20  # one range request
DOWNLOAD_REQUEST_TIMEOUT_S = 120.0  # for one chunk: at least 70 kB/s
PROGRESS_EVERY_S = 5.0
HASH_BLOCK = 16 << 20
NO_DEADLINE_S = 10 * 365 * 24 * 3600.0  # a download may take hours; each request has its own limit


@dataclass(frozen=True)
class Download:
    """A complete download: where it is and what it is."""

    path: Path
    url: str
    size: int
    validator: str | None
    sha256: str
    received: int = 0  # bytes received by this run (0 when an earlier run's download was reused)


def complete_download(path: Path, size: int, validator: str | None) -> Download | None:
    """The earlier complete download at `path`, if it is still the file the server serves (same size and validator)."""
    record = _record(path)
    if record is None or not record.get("complete") or not path.is_file():
        return None
    if record.get("size") != size or record.get("validator") != validator or path.stat().st_size != size:
        return None
    return Download(path, str(record["url"]), size, validator, str(record["sha256"]))


def download(url: str, destination: Path, size: int, announce: Callable[[str], None], expected_sha256: str | None = None) -> Download:
    """The whole file at `url` as `destination`, resuming a partial download of the same file."""
    partial = destination.with_name(f"{destination.name}.download")
    reader = RangeReader(url, time.monotonic() + NO_DEADLINE_S, DOWNLOAD_REQUEST_TIMEOUT_S)
    reader.read(0, 1)  # what the server serves now: an earlier partial download of another file is not resumed
    have = _resumable(partial, destination, url, reader)
    check_space(partial.parent, size - have, destination.name)
    _write_record(destination, url, size, reader, complete=False, sha256=None)
    hasher = _hashed(partial, have)
    started, last, received = time.monotonic(), time.monotonic(), 0
    with open(partial, "r+b" if have else "wb") as handle:
        handle.seek(have)
        while have < size:
            piece = reader.read(have, min(DOWNLOAD_CHUNK, size - have))
            handle.write(piece)
            hasher.update(piece)
            have, received = have + len(piece), received + len(piece)
            if time.monotonic() - last >= PROGRESS_EVERY_S:
                last = time.monotonic()
                announce(_progress_line(destination.name, have, size, received / max(last - started, 1e-6)))
    served = reader.served
    if served is not None and served.size != size:
        raise RemoteError(f"the server now says {destination.name} has {served.size:,} bytes, not {size:,}: run again")
    digest = hasher.hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        partial.unlink(missing_ok=True)
        raise RemoteError(f"the downloaded bytes of {destination.name} have SHA-256 {digest}, not the {expected_sha256} the source states")
    os.replace(partial, destination)
    _write_record(destination, url, size, reader, complete=True, sha256=digest)
    return Download(destination, url, size, served.validator if served else None, digest, received)


def _resumable(partial: Path, destination: Path, url: str, reader: RangeReader) -> int:
    """How many bytes of an earlier partial download of the same file can be kept (0: start again)."""
    record, served = _record(destination), reader.served
    same = record is not None and not record.get("complete") and record.get("url") == url
    if not partial.is_file() or not same or served is None or (record or {}).get("validator") != served.validator:
        partial.unlink(missing_ok=True)
        return 0
    return min(partial.stat().st_size, served.size)


def check_space(folder: Path, needed: int, name: str) -> None:
    existing = next(parent for parent in (folder, *folder.parents) if parent.exists())  # a cache not yet made
    free = shutil.disk_usage(existing).free
    if free < needed:
        raise RemoteError(f"downloading {name} needs {human_bytes(needed)} more in {folder}, which has {human_bytes(free)} free")


def hashed_once(path: Path, destination: Path, size: int) -> str:
    """The SHA-256 of a whole file kept elsewhere (the Hub's cache), from the record beside `destination` while the file
    is unchanged (its identity: size, modification time, inode), else computed now and recorded."""
    identity = file_identity(path)
    record = _record(destination)
    if record is not None and record.get("identity") == identity and record.get("sha256"):
        return str(record["sha256"])
    digest = hash_stream(path, size).sha256
    _save_record(destination, {"path": str(path), "identity": identity, "sha256": digest, "complete": False})
    return digest


def _hashed(partial: Path, have: int) -> Any:
    """A SHA-256 that has seen the first `have` bytes of the partial download."""
    hasher = hashlib.sha256()
    if have:
        with open(partial, "rb") as handle:
            while block := handle.read(HASH_BLOCK):
                hasher.update(block)
    return hasher


def _progress_line(name: str, have: int, size: int, rate: float) -> str:
    left = (size - have) / max(rate, 1.0)
    return f"downloading {name}: {human_bytes(have)} of {human_bytes(size)} ({human_bytes(int(rate))}/s), about {left / 60:.0f} min left"


def _record_path(destination: Path) -> Path:
    return destination.with_name(f"{destination.name}.json")


def _record(destination: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(_record_path(destination).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _write_record(destination: Path, url: str, size: int, reader: RangeReader, complete: bool, sha256: str | None) -> None:
    served = reader.served
    _save_record(
        destination, {"url": url, "size": size, "validator": served.validator if served else None, "complete": complete, "sha256": sha256}
    )


def _save_record(destination: Path, record: dict[str, Any]) -> None:
    """The record beside `destination`, written whole or not at all."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = _record_path(destination).with_suffix(".json.tmp")
    temporary.write_text(json.dumps(record), encoding="utf-8")
    os.replace(temporary, _record_path(destination))
