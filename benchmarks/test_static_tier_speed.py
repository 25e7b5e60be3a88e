"""Speed and memory of the static tier, as ratios against reference runs in the same process.

Run with: pytest benchmarks/ -m benchmark
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from gguf import GGUFReader

from benchmarks.measure import best_of, run_measured
from pytest_dfqs.modelfile.header import read_header
from pytest_dfqs.modelfile.integrity import hash_stream
from tests.deepseek_sized import REFERENCE_BYTES, deepseek_sized_header, write_sparse

pytestmark = pytest.mark.benchmark
GIB = 1 << 30


@pytest.fixture(scope="module")
def deepseek_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sparse(tmp_path_factory.mktemp("dsv4") / "DeepSeek-V4-Flash-sized.gguf", deepseek_sized_header())


def test_header_parse_against_gguf_reader(benchmark, deepseek_file: Path) -> None:
    header = benchmark.pedantic(read_header, args=(deepseek_file,), rounds=20, iterations=1, warmup_rounds=2)
    assert len(header.tensors) == 1 + 43 * 30 + 2 and header.metadata["tokenizer.ggml.tokens"].count == 129_280
    reference = best_of(1, lambda: GGUFReader(deepseek_file))
    ours = benchmark.stats.stats.median
    benchmark.extra_info.update({"gguf_reader_s": reference, "read_header_median_s": ours, "speedup": reference / ours})
    print(f"\nread_header median {ours * 1000:.1f} ms, GGUFReader {reference:.2f} s, speed-up {reference / ours:.0f}x")
    assert ours < 0.050
    assert reference / ours >= 50


def test_parse_time_does_not_grow_with_file_size(benchmark, deepseek_file: Path, tmp_path: Path) -> None:
    small = write_sparse(tmp_path / "same-header-1gib.gguf", deepseek_sized_header(), size=GIB)
    benchmark.pedantic(read_header, args=(deepseek_file,), rounds=15, iterations=1, warmup_rounds=2)
    large_time = benchmark.stats.stats.median
    small_time = sorted(best_of(1, lambda: read_header(small)) for _ in range(15))[7]
    ratio = large_time / small_time
    benchmark.extra_info.update({"file_61_6gb_s": large_time, "file_1gib_s": small_time, "ratio": ratio})
    print(f"\n61.6 GB file {large_time * 1000:.1f} ms, 1 GiB file {small_time * 1000:.1f} ms, ratio {ratio:.2f}")
    assert 0.7 < ratio < 1.4


def test_whole_static_tier_on_a_sparse_61_6_gb_file(benchmark, deepseek_file: Path, tmp_path: Path) -> None:
    assert deepseek_file.stat().st_size == REFERENCE_BYTES
    certify = [sys.executable, "-m", "pytest", f"--dfqs-model={deepseek_file}", "-p", "no:cacheprovider", "-q"]
    baseline = [sys.executable, "-m", "pytest", "--version"]
    wall, rss, output = benchmark.pedantic(run_measured, args=(certify, tmp_path), rounds=3, iterations=1)
    base_wall, base_rss, _ = run_measured(baseline, tmp_path)
    benchmark.extra_info.update({"wall_s": wall, "peak_rss_mb": rss, "pytest_version_wall_s": base_wall, "pytest_version_rss_mb": base_rss})
    print(f"\nstatic tier {wall:.2f} s, {rss} MB peak RSS; bare `pytest --version` {base_wall:.2f} s, {base_rss} MB")
    assert "DFQS-3.1   SHALL   MET" in output, output
    assert wall < 2.0 and rss < 200


def test_sha256_throughput_against_openssl(benchmark, tmp_path: Path) -> None:
    blob = tmp_path / "one-gib.bin"
    with open(blob, "wb") as handle:
        chunk = os.urandom(64 << 20)
        for _ in range(16):
            handle.write(chunk)
    subprocess.run(["cat", str(blob)], stdout=subprocess.DEVNULL, check=True)  # into the page cache
    openssl = best_of(3, lambda: subprocess.run(["openssl", "dgst", "-sha256", str(blob)], capture_output=True, check=True))
    digest = benchmark.pedantic(hash_stream, args=(blob, GIB), rounds=3, iterations=1)
    ours = benchmark.stats.stats.min
    expected = subprocess.run(["openssl", "dgst", "-sha256", "-r", str(blob)], capture_output=True, text=True).stdout.split()[0]
    ratio = openssl / ours
    benchmark.extra_info.update({"openssl_s": openssl, "hashlib_s": ours, "throughput_ratio": ratio, "gib_per_s": 1 / ours})
    print(f"\nhashlib {1 / ours:.2f} GiB/s, openssl {1 / openssl:.2f} GiB/s, ratio {ratio:.2f}")
    assert digest.sha256 == expected
    assert ratio >= 0.9
