"""What a remote header costs: bytes and requests per file beside the header's size, and the static tier by URL
against the same run by path, in the same session (nginx on the loopback).

Run with: pytest benchmarks/test_remote_header_speed.py -m benchmark -s
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.measure import run_measured
from pytest_dfqs.modelfile.demo import write_model
from pytest_dfqs.modelfile.header import read_header
from pytest_dfqs.remote.header_fetch import CHUNK, fetch_header
from pytest_dfqs.remote.ranges import RangeReader
from tests.real_model import fetch_gemma3
from tests.servers import DEEPSEEK_SIZED, NGINX, Nginx, serve_models

pytestmark = [
    pytest.mark.benchmark,
    pytest.mark.skipif(not os.access(NGINX, os.X_OK), reason="nginx is not installed (.ci/run installs Debian's nginx-light)"),
]
ROUNDS = 5
FILES = ("tiny-moe.gguf", "SmolLM2.gguf", "gemma3.gguf", DEEPSEEK_SIZED)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, smollm2: Path, pytestconfig: pytest.Config) -> Iterator[Nginx]:
    tiny = tmp_path_factory.mktemp("models") / "tiny-moe.gguf"
    write_model(tiny)
    gemma = fetch_gemma3(Path(pytestconfig.cache.mkdir("gemma3")))
    files = {"SmolLM2.gguf": smollm2, "gemma3.gguf": gemma, "tiny-moe.gguf": tiny}
    server = serve_models(tmp_path_factory.mktemp("www"), tmp_path_factory.mktemp("nginx"), files)
    yield server
    server.stop()


def test_bytes_and_requests_per_file_beside_the_header(benchmark, served: Nginx, tmp_path: Path) -> None:
    rows = {}
    for name in FILES:
        header = read_header(served.root / name).data_offset
        fetched = fetch_header(RangeReader(served.url(name), time.monotonic() + 120), tmp_path / name)
        rows[name] = {
            "header_bytes": header,
            "fetched_bytes": fetched.fetched,
            "requests": fetched.requests,
            "ratio": fetched.fetched / header,
        }
    benchmark.pedantic(
        lambda: fetch_header(RangeReader(served.url(DEEPSEEK_SIZED), time.monotonic() + 120), tmp_path / "again.gguf"), rounds=ROUNDS
    )
    benchmark.extra_info.update({"chunk": CHUNK, "files": rows})
    print(f"\nchunk {CHUNK:,} bytes")
    for name, row in rows.items():
        header, fetched = f"{row['header_bytes']:>11,}", f"{row['fetched_bytes']:>11,}"
        print(f"{name:32s} header {header}  fetched {fetched}  {row['requests']} requests  x{row['ratio']:.2f}")
    print(f"DeepSeek-V4-Flash-sized header fetch: median {benchmark.stats.stats.median * 1000:.0f} ms")
    for name, row in rows.items():
        assert row["fetched_bytes"] <= row["header_bytes"] + CHUNK, name


def test_the_static_tier_by_url_within_twice_its_time_by_path(benchmark, served: Nginx, tmp_path: Path) -> None:
    """Each round by URL (the one pytest-benchmark times) follows a run by path (its setup): the same machine load."""
    certify = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    env_path = tmp_path / "by-path"
    env_path.mkdir()
    runs: dict[str, list[tuple[float, str]]] = {"url": [], "path": []}

    def by_url() -> None:
        wall, _, output = run_measured([*certify, f"--dfqs-model={served.url(DEEPSEEK_SIZED)}"], tmp_path)
        runs["url"].append((wall, output))

    def by_path() -> None:
        wall, _, output = run_measured([*certify, f"--dfqs-model={served.root / DEEPSEEK_SIZED}"], env_path)
        runs["path"].append((wall, output))

    benchmark.pedantic(by_url, setup=by_path, rounds=ROUNDS, warmup_rounds=1)
    url, path = statistics.median(w for w, _ in runs["url"][-ROUNDS:]), statistics.median(w for w, _ in runs["path"][-ROUNDS:])
    for _, output in runs["url"] + runs["path"]:
        assert "DFQS-3.1   SHALL   MET" in output, output
    benchmark.extra_info.update({"by_url_s": url, "by_path_s": path, "ratio": url / path})
    print(f"\nstatic tier on the 61.6 GB file: by URL {url:.2f} s, by path {path:.2f} s, ratio {url / path:.2f}")
    assert url / path < 2.0
