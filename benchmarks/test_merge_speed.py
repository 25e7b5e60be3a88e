"""Speed and memory of dfqs-merge, as ratios against `cat` on the same shards in the same run.

The merge streams each shard's data section through the kernel; `cat shard1
shard2 > out` is the floor of what copying those bytes costs here. Each round
starts from a quiet disk (`sync`) with the shards in the page cache. The merge
also fsyncs its output, which `cat` does not: the whole merge is compared with
`cat` plus one fsync of its output, and its streaming phase with plain `cat`.

Run with: pytest benchmarks/test_merge_speed.py -m benchmark
"""

from __future__ import annotations

import filecmp
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.measure import run_measured
from pytest_dfqs.merge import Merged, merge
from tests.gguf_bytes import RawTensor, minimal_model
from tests.gguf_split import split_gguf

pytestmark = pytest.mark.benchmark
MIB = 1 << 20
TENSOR_BYTES = 72 * MIB
BIG_TENSORS = 8  # about 600 MB of model
ROUNDS = 5
FALLBACK_COPY = (
    "import os, sys; from pytest_dfqs.merge import CHUNK_BYTES, copy_range;"
    "source = os.open(sys.argv[1], os.O_RDONLY); target = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_APPEND);"
    "copy_range(source, target, 0, os.path.getsize(sys.argv[1]), CHUNK_BYTES, lambda n: None)"
)


def write_random_model(path: Path, extra_tensors: int) -> Path:
    """A valid GGUF whose data is mostly random bytes: 72 MiB F32 tensors nothing can compress or skip."""
    raw = minimal_model()
    raw.tensors += [RawTensor(f"blk.0.ffn_up.{index}.weight", (TENSOR_BYTES // 4,)) for index in range(extra_tensors)]
    header = raw.header_bytes()
    with open(path, "wb") as handle:
        handle.write(header + bytes(-len(header) % raw.alignment))
        for tensor in raw.tensors:
            handle.write(os.urandom(tensor.nbytes()) + bytes(-tensor.nbytes() % raw.alignment))
    return path


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """A ~600 MB model split in two shards of a few hundred MB, and a ~75 MB one: each with its unsplit original beside it."""
    folder = tmp_path_factory.mktemp("merge-speed")
    needed = 5 * (BIG_TENSORS + 1) * TENSOR_BYTES  # original, shards, merged output, cat output, with room to spare
    free = shutil.disk_usage(folder).free
    if free < needed:
        pytest.skip(f"{free / 1e9:.1f} GB free in {folder}, the merge benchmark needs {needed / 1e9:.1f} GB")
    big = split_gguf(write_random_model(folder / "big.gguf", BIG_TENSORS), folder / "big", 6)
    small = split_gguf(write_random_model(folder / "small.gguf", 1), folder / "small", 3)
    return {"big": big, "small": small}


def _timed(action) -> float:
    os.sync()  # every round starts from a quiet disk
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _cat(shards: list[Path], out: Path, durable: bool) -> None:
    with open(out, "wb") as handle:
        subprocess.run(["cat", *map(str, shards)], stdout=handle, check=True)
        if durable:
            os.fsync(handle.fileno())


def _best_cat(shards: list[Path], out: Path, durable: bool) -> float:
    times = []
    for _ in range(ROUNDS):
        times.append(_timed(lambda: _cat(shards, out, durable)))
        out.unlink()
    return min(times)


def test_merge_streams_like_cat(benchmark, splits: dict[str, list[Path]], tmp_path: Path) -> None:
    shards = splits["big"]
    shard_bytes = sum(path.stat().st_size for path in shards)
    merged_path = tmp_path / "merged.gguf"
    subprocess.run(["cat", *map(str, shards)], stdout=subprocess.DEVNULL, check=True)  # the shards into the page cache
    runs: list[Merged] = []

    def fresh() -> tuple[tuple, dict]:
        merged_path.unlink(missing_ok=True)
        os.sync()
        return (), {}

    benchmark.pedantic(lambda: runs.append(merge(shards[:1], merged_path, stream=io.StringIO())), setup=fresh, rounds=ROUNDS)
    assert filecmp.cmp(merged_path, shards[0].parent / "big.gguf", shallow=False)  # laid out as the original: the very same bytes
    plan = runs[0].plan
    cat_s = _best_cat(shards, tmp_path / "cat.out", durable=False)
    cat_fsync_s = _best_cat(shards, tmp_path / "cat.out", durable=True)
    copy_s, whole_s = min(run.copy_seconds for run in runs), benchmark.stats.stats.min
    cat_rate, cat_fsync_rate = shard_bytes / cat_s, shard_bytes / cat_fsync_s
    stream_rate, whole_rate = plan.data_bytes / copy_s, plan.size / whole_s
    figures = {
        "file_bytes": plan.size,
        "cat_mb_s": cat_rate / 1e6,
        "cat_fsync_mb_s": cat_fsync_rate / 1e6,
        "merge_stream_mb_s": stream_rate / 1e6,
        "merge_whole_mb_s": whole_rate / 1e6,
        "stream_vs_cat": stream_rate / cat_rate,
        "whole_vs_cat_fsync": whole_rate / cat_fsync_rate,
        "whole_vs_cat": whole_rate / cat_rate,
        "check_s": min(run.check_seconds for run in runs),
        "sync_s": min(run.sync_seconds for run in runs),
    }
    benchmark.extra_info.update(figures)
    print(
        f"\n{plan.size / 1e6:.0f} MB from 2 shards: merge streams at {stream_rate / 1e6:.0f} MB/s, cat {cat_rate / 1e6:.0f} MB/s"
        f" (ratio {figures['stream_vs_cat']:.2f}); whole merge with checks and fsync {whole_rate / 1e6:.0f} MB/s,"
        f" cat + fsync {cat_fsync_rate / 1e6:.0f} MB/s (ratio {figures['whole_vs_cat_fsync']:.2f}),"
        f" plain cat ratio {figures['whole_vs_cat']:.2f}; checks {figures['check_s'] * 1000:.0f} ms, fsync {figures['sync_s']:.2f} s"
    )
    assert figures["stream_vs_cat"] >= 0.7
    assert figures["whole_vs_cat_fsync"] >= 0.7


def test_merge_memory_does_not_grow_with_the_model(splits: dict[str, list[Path]], tmp_path: Path) -> None:
    """Peak RSS of `python -m pytest_dfqs.merge` on 75 MB and 600 MB splits, against importing it; and of the read/write fallback."""
    _, imported_mb, _ = run_measured([sys.executable, "-c", "import pytest_dfqs.merge"], tmp_path)
    peaks, sizes = {}, {}
    for name, shards in splits.items():
        out = tmp_path / f"{name}.gguf"
        _, peaks[name], output = run_measured([sys.executable, "-m", "pytest_dfqs.merge", str(shards[0]), "-o", str(out)], tmp_path)
        assert "dfqs-merge: wrote" in output, output
        sizes[name] = out.stat().st_size
        out.unlink()
    _, fallback_mb, _ = run_measured([sys.executable, "-c", FALLBACK_COPY, str(splits["big"][1]), str(tmp_path / "appended.bin")], tmp_path)
    print(
        f"\npeak RSS: import only {imported_mb} MB; merging {sizes['small'] / 1e6:.0f} MB {peaks['small']} MB,"
        f" {sizes['big'] / 1e6:.0f} MB {peaks['big']} MB ({peaks['big'] * MIB / sizes['big']:.1%} of the file);"
        f" read/write fallback with 64 MiB chunks {fallback_mb} MB"
    )
    assert peaks["big"] <= peaks["small"] + 8  # eight times the data, the same memory
    assert peaks["big"] <= imported_mb + 16  # the kernel copies: nothing of the data passes through the process
    assert fallback_mb <= imported_mb + 64 + 16  # the fallback holds one chunk at a time
