"""Streaming SHA-256, its cache, checksums files and expected digests."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from pathlib import Path

import pytest

from pytest_dfqs.modelfile.integrity import (
    DigestStore,
    ExpectedDigest,
    expected_digest,
    file_sha256,
    hash_stream,
    parse_checksums,
    validate_sha256,
)


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


def test_cache_hit_reads_nothing_and_a_change_invalidates_it(blob: Path, tmp_path: Path) -> None:
    cache = DigestStore(tmp_path)
    first = file_sha256(blob, cache)
    second = file_sha256(blob, cache)
    assert (first.cached, second.cached, second.bytes_read, second.sha256) == (False, True, 0, first.sha256)
    with open(blob, "r+b") as handle:
        handle.write(b"changed")
    third = file_sha256(blob, cache)
    assert not third.cached and third.sha256 == hashlib.sha256(blob.read_bytes()).hexdigest() != first.sha256


def test_a_corrupt_cache_entry_is_ignored_and_written_anew(blob: Path, tmp_path: Path) -> None:
    store = DigestStore(tmp_path / "digests")
    store.folder.mkdir()
    first = file_sha256(blob, store)
    (entry,) = store.folder.iterdir()
    for damage in ('{"identity": ', '{"identity": null, "sha256": 7}', "\x00\xff"):
        entry.write_text(damage, encoding="latin-1")
        again = file_sha256(blob, store)
        assert not again.cached and again.sha256 == first.sha256
        assert json.loads(entry.read_text())["sha256"] == first.sha256  # rewritten whole
    assert [p.name for p in store.folder.iterdir()] == [entry.name]  # no temporary file left behind


def _hash_repeatedly(blob: Path, folder: Path, rounds: int) -> set[str]:
    store = DigestStore(folder)
    digests = set()
    for _ in range(rounds):
        os.utime(blob)  # a new modification time: every round hashes again and rewrites the entry
        digests.add(file_sha256(blob, store).sha256)
    return digests


def test_two_sessions_hashing_at_once_share_the_cache(blob: Path, tmp_path: Path) -> None:
    """Two processes rewrite and read the same entry 40 times each: every digest right, the entry whole at the end."""
    folder = tmp_path / "digests"
    folder.mkdir()
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.starmap(_hash_repeatedly, [(blob, folder, 40), (blob, folder, 40)])
    assert results == [{hashlib.sha256(blob.read_bytes()).hexdigest()}] * 2
    (entry,) = folder.iterdir()
    assert json.loads(entry.read_text())["sha256"] == hashlib.sha256(blob.read_bytes()).hexdigest()


def test_a_read_only_model_and_folder_are_hashed_and_cached_elsewhere(blob: Path, tmp_path: Path) -> None:
    store = DigestStore(tmp_path / "digests")
    store.folder.mkdir()
    blob.chmod(0o444)
    blob.parent.chmod(0o555)
    try:
        listing = sorted(p.name for p in blob.parent.iterdir())
        assert file_sha256(blob, store).sha256 == file_sha256(blob, store).sha256
        assert sorted(p.name for p in blob.parent.iterdir()) == listing
    finally:
        blob.parent.chmod(0o755)


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
    profile = ExpectedDigest("c" * 64, "the profile")
    assert expected_digest(path, "a" * 64, {path.name: "b" * 64}, "sums", profile).source == "--dfqs-sha256"
    assert expected_digest(path, None, {path.name: "b" * 64}, "sums", profile).digest == "b" * 64
    assert expected_digest(path, None, {"other.gguf": "b" * 64}, "sums", profile) == profile
    assert expected_digest(path, None, None, "", None) is None
