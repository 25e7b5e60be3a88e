"""Streaming SHA-256, its cache, checksums files and expected digests."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from pytest_dfqs.modelfile.integrity import (
    REFERENCE_SHA256,
    expected_digest,
    file_sha256,
    hash_stream,
    parse_checksums,
    validate_sha256,
)


class DictCache:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str, default: Any) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value


@pytest.fixture
def blob(tmp_path: Path) -> Path:
    path = tmp_path / "blob.gguf"
    path.write_bytes(os.urandom(3 * (8 << 20) + 12345))  # spans several chunks and a partial one
    return path


def test_digest_equals_hashlib(blob: Path) -> None:
    progress: list[tuple[int, int]] = []
    digest = hash_stream(blob, blob.stat().st_size, lambda done, total, seconds: progress.append((done, total)))
    assert digest.sha256 == hashlib.sha256(blob.read_bytes()).hexdigest()
    assert digest.bytes_read == blob.stat().st_size
    assert progress[-1] == (blob.stat().st_size, blob.stat().st_size)


def test_cache_hit_reads_nothing_and_a_change_invalidates_it(blob: Path) -> None:
    cache = DictCache()
    first = file_sha256(blob, cache)
    second = file_sha256(blob, cache)
    assert (first.cached, second.cached, second.bytes_read, second.sha256) == (False, True, 0, first.sha256)
    with open(blob, "r+b") as handle:
        handle.write(b"changed")
    third = file_sha256(blob, cache)
    assert not third.cached and third.sha256 == hashlib.sha256(blob.read_bytes()).hexdigest() != first.sha256


def test_parse_checksums() -> None:
    text = f"# comment\n{'A' * 64}  model.gguf\n{'b' * 64} *sub/dir/other.gguf\n\n"
    assert parse_checksums(text, "sums") == {"model.gguf": "a" * 64, "other.gguf": "b" * 64}
    with pytest.raises(ValueError, match=r"sums:1: expected"):
        parse_checksums("deadbeef  model.gguf", "sums")


def test_validate_sha256() -> None:
    assert validate_sha256(" " + "F" * 64 + "\n") == "f" * 64
    with pytest.raises(ValueError, match="not a SHA-256 digest"):
        validate_sha256("g" * 64)


def test_expected_digest_sources() -> None:
    path = Path("/models/DeepSeek-V4-Flash-IQ1_S-XL.gguf")
    assert expected_digest(path, "a" * 64, {path.name: "b" * 64}, "sums", True).source == "--dfqs-sha256"
    assert expected_digest(path, None, {path.name: "b" * 64}, "sums", True).digest == "b" * 64
    reference = expected_digest(path, None, {"other.gguf": "b" * 64}, "sums", True)
    assert reference.digest == REFERENCE_SHA256 and "artifact-integrity" in reference.source
    assert expected_digest(path, None, None, "", False) is None
