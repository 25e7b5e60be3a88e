"""dfqs-merge on real split files: what it writes, what llama.cpp and the DFQS checks make of it, how it refuses and stops."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gguf.constants import GGUFValueType

from pytest_dfqs.merge import COPIERS, MergeError, Progress, check_space, copy_range
from pytest_dfqs.modelfile.header import GGUFHeader, metadata_spans, read_header
from tests.conftest import Certification
from tests.gguf_bytes import RawTensor, minimal_model
from tests.gguf_split import split_gguf
from tests.interruptible import start_interruptible
from tests.llama_greedy import greedy_run
from tests.machine_speed import scaled

SPLIT_KEYS = {"split.no", "split.count", "split.tensors.count"}


def run_merge(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest_dfqs.merge", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=scaled(300), env={**os.environ, **(env or {})})


def refused(result: subprocess.CompletedProcess[str], status: int = 2) -> str:
    """The one line a refusal prints; never a traceback."""
    assert result.returncode == status, result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith("dfqs-merge: merging ")]
    assert len(lines) == 1 and lines[0].startswith("dfqs-merge: ") and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def split_in(model: Path, folder: Path, max_tensors: int) -> list[Path]:
    folder.mkdir(exist_ok=True)
    return split_gguf(model, folder / "tiny", max_tensors)


def tensor_digests(*paths: Path) -> dict[str, str]:
    """Each tensor's data by name, over one file or all shards of a set."""
    digests = {}
    for path in paths:
        header = read_header(path)
        with open(path, "rb") as handle:
            for tensor in header.tensors:
                handle.seek(header.data_offset + tensor.offset)
                digests[tensor.name] = hashlib.sha256(handle.read(tensor.nbytes)).hexdigest()
    return digests


def raw_kv(header: GGUFHeader) -> dict[str, bytes]:
    data = header.path.read_bytes()
    return {key: data[start:end] for key, (start, end) in metadata_spans(header).items()}


def fingerprint(paths: list[Path]) -> list[tuple[str, int]]:
    return [(hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns) for path in paths]


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


@pytest.fixture
def tiny_split(runtime_moe_model: Path, tmp_path: Path) -> list[Path]:
    return split_in(runtime_moe_model, tmp_path, 12)


def test_the_tiny_moe_split_and_merged_is_the_original(runtime_moe_model: Path, tiny_split: list[Path], tmp_path: Path) -> None:
    before = fingerprint(tiny_split)
    merged = tmp_path / "merged.gguf"
    result = run_merge(tiny_split[0], "-o", merged)
    assert result.returncode == 0, result.stderr
    assert f"dfqs-merge: wrote {merged} (" in result.stdout and "23 tensors from 2 shards" in result.stdout
    assert tensor_digests(merged) == tensor_digests(runtime_moe_model) == tensor_digests(*tiny_split)
    first, original = read_header(tiny_split[0]), read_header(merged)
    assert raw_kv(original) == {key: value for key, value in raw_kv(first).items() if key not in SPLIT_KEYS}
    assert raw_kv(original) == raw_kv(read_header(runtime_moe_model))
    assert merged.read_bytes() == runtime_moe_model.read_bytes()  # here even the whole file: the original was laid out the same way
    assert greedy_run(merged) == greedy_run(runtime_moe_model)
    assert fingerprint(tiny_split) == before and leftovers(tmp_path) == []


def test_the_merged_file_meets_the_single_file_clause(certify: Certification, tiny_split: list[Path], tmp_path: Path) -> None:
    merged = tmp_path / "merged.gguf"
    assert run_merge(tiny_split[0], "-o", merged).returncode == 0
    result = certify.run(f"--dfqs-model={merged}", "--dfqs-tier=runtime")
    assert certify.clause("DFQS-3.1")["status"] == "MET", result.stdout.str()
    findings = {f["check"]: f["status"] for f in certify.clause("DFQS-3.1")["findings"]}
    assert findings["no-split"] == findings["llama-cpp-executes"] == "MET", findings


def test_smollm2_split_in_two_and_merged(smollm2: Path, tmp_path: Path) -> None:
    """The real model: llama.cpp runs the split and the merged file as the original, and every tensor is the original's."""
    count = len(read_header(smollm2).tensors)
    shards = split_gguf(smollm2, tmp_path / "smollm2", (count + 1) // 2)
    assert len(shards) == 2
    merged = tmp_path / "smollm2.gguf"
    result = run_merge(*shards, "-o", merged)  # every shard given, in order
    assert result.returncode == 0, result.stderr
    assert tensor_digests(merged) == tensor_digests(smollm2) and len(tensor_digests(merged)) == count
    original = greedy_run(smollm2)
    assert greedy_run(shards[0]) == original and greedy_run(merged) == original


def test_tensor_infos_are_copied_as_they_are(tiny_split: list[Path], tmp_path: Path) -> None:
    """A tensor name that is not UTF-8 (read with \\x escapes) reaches the merged file as the bytes it was, not as its escape."""
    data = tiny_split[1].read_bytes()
    assert data.count(b"output_norm.weight") == 1
    tiny_split[1].write_bytes(data.replace(b"output_norm.weight", b"output_nor\xff.weight"))
    merged = tmp_path / "merged.gguf"
    assert run_merge(tiny_split[0], "-o", merged).returncode == 0
    assert merged.read_bytes().count(b"output_nor\xff.weight") == 1
    assert tensor_digests(merged) == tensor_digests(*tiny_split) and "output_nor\\xff.weight" in tensor_digests(merged)


def test_a_missing_shard_is_refused(runtime_moe_model: Path, tmp_path: Path) -> None:
    shards = split_in(runtime_moe_model, tmp_path, 9)
    shards[1].unlink()
    line = refused(run_merge(shards[0], "-o", tmp_path / "out.gguf"))
    assert line.startswith(f"dfqs-merge: missing shard 2 of 3: tiny-00002-of-00003.gguf is not in {tmp_path}")
    assert line.endswith("; nothing was written") and not (tmp_path / "out.gguf").exists() and leftovers(tmp_path) == []


def test_an_extra_file_not_of_the_set_is_refused(runtime_moe_model: Path, tmp_path: Path) -> None:
    shards = split_in(runtime_moe_model, tmp_path / "a", 12)
    stray = split_in(runtime_moe_model, tmp_path / "b", 9)[2]
    line = refused(run_merge(*shards, stray, "-o", tmp_path / "out.gguf"))
    assert line.startswith("dfqs-merge: extra file: tiny-00003-of-00003.gguf is shard 3 of 3 of another set (tiny);")


def test_a_shard_of_another_split_is_refused(runtime_moe_model: Path, tmp_path: Path) -> None:
    """Two splits of one model with the same names: shard 2 of the other split brings tensors shard 1 already has."""
    shards = split_in(runtime_moe_model, tmp_path / "a", 16)
    other = split_in(runtime_moe_model, tmp_path / "b", 12)
    shards[1].write_bytes(other[1].read_bytes())
    line = refused(run_merge(shards[0], "-o", tmp_path / "out.gguf"))
    assert line.startswith(
        "dfqs-merge: tensor 'blk.1.attn_q.weight' (and 'blk.1.attn_k.weight', 'blk.1.attn_v.weight' and 1 more)"
        " is in two shards, tiny-00001-of-00002.gguf and tiny-00002-of-00002.gguf"
    ), line


def test_a_shard_that_is_not_a_gguf_is_refused(tiny_split: list[Path], tmp_path: Path) -> None:
    tiny_split[1].write_text("<html>rate limited</html>")
    line = refused(run_merge(tiny_split[0], "-o", tmp_path / "out.gguf"))
    assert "tiny-00002-of-00002.gguf (shard 2 of 2) is not a GGUF file llama.cpp can read: magic at byte 0" in line


def test_a_set_that_cannot_be_one_file_as_llama_cpp_lays_it_out(tmp_path: Path) -> None:
    """Shard 1 declares 64-byte alignment, shard 2 is packed at gguf-split's 32: llama.cpp reads each shard, one file cannot hold both."""
    raw = minimal_model()
    raw.alignment = 64
    raw.kv += [("general.alignment", GGUFValueType.UINT32, 64), ("general.name", GGUFValueType.STRING, "x" * 16)]
    raw.tensors = [RawTensor("token_embd.weight", (8, 4)), RawTensor("blk.0.attn_norm.weight", (8,))]
    raw.tensors += [RawTensor("blk.0.ffn_norm.weight", (8,)), RawTensor("output.weight", (8, 4))]
    shards = split_gguf(raw.write(tmp_path / "aligned.gguf"), tmp_path / "aligned", 2)
    line = refused(run_merge(shards[0], "-o", tmp_path / "out.gguf"))  # a problem of the set: status 2
    assert line.startswith("dfqs-merge: the merged file could not be laid out as llama.cpp requires: tensor 'output.weight'")
    assert "has data offset 224, not a multiple of general.alignment 64; nothing was written" in line
    assert leftovers(tmp_path) == [] and not (tmp_path / "out.gguf").exists()


def test_an_existing_output_needs_force(tiny_split: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "out.gguf"
    out.write_text("keep me")
    line = refused(run_merge(tiny_split[0], "-o", out))
    assert line == f"dfqs-merge: {out} exists: pass --force to replace it (replaced only once the merged file is complete and checked)"
    assert out.read_text() == "keep me"
    assert run_merge(tiny_split[0], "-o", out, "--force").returncode == 0
    assert tensor_digests(out) == tensor_digests(*tiny_split) and leftovers(tmp_path) == []


@pytest.mark.parametrize("which", [0, 1])
def test_the_output_cannot_be_an_input(tiny_split: list[Path], which: int) -> None:
    before = fingerprint(tiny_split)
    line = refused(run_merge(tiny_split[0], "-o", tiny_split[which], "--force"))
    assert f"is shard {which + 1} of the set: dfqs-merge never modifies its inputs" in line
    assert fingerprint(tiny_split) == before


def test_output_names_and_folders_it_will_not_write(tiny_split: list[Path], tmp_path: Path) -> None:
    assert "is named like a shard" in refused(run_merge(tiny_split[0], "-o", tmp_path / "x-00001-of-00001.gguf"))
    assert "the output folder" in refused(run_merge(tiny_split[0], "-o", tmp_path / "no" / "out.gguf"))
    assert "is a folder" in refused(run_merge(tiny_split[0], "-o", tmp_path))
    assert "-o/--output" in run_merge(tiny_split[0]).stderr and run_merge(tiny_split[0]).returncode == 2


def test_not_enough_space_is_refused_before_writing(tmp_path: Path) -> None:
    check_space(10**9, 10**9, tmp_path)
    with pytest.raises(MergeError) as refusal:
        check_space(61_600_000_000, 12_000_000_000, tmp_path)
    assert refusal.value.status == 2
    assert str(refusal.value) == (
        f"not enough space in {tmp_path}: the merged file needs 61.60 GB, 12.00 GB are free; free 49.60 GB or choose another -o"
    )


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_an_interrupted_merge_leaves_nothing(smollm2: Path, tmp_path: Path, signum: int, status: int) -> None:
    """Stopped in the middle of the copy (tiny chunks make it last): no output, no temporary file, the shards unchanged."""
    count = len(read_header(smollm2).tensors)
    shards = split_gguf(smollm2, tmp_path / "smollm2", (count + 1) // 2)
    before = fingerprint(shards)
    out = tmp_path / "merged.gguf"
    command = [sys.executable, "-m", "pytest_dfqs.merge", str(shards[0]), "-o", str(out)]
    merging = start_interruptible(command, stderr=subprocess.PIPE, text=True, env={**os.environ, "DFQS_MERGE_CHUNK": "16"})
    deadline = time.monotonic() + 60
    while not leftovers(tmp_path) and merging.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert leftovers(tmp_path) != [] and leftovers(tmp_path)[0].startswith(".merged.gguf.dfqs-merge-")  # copying into it now
    merging.send_signal(signum)
    _, stderr = merging.communicate(timeout=scaled(30))
    assert merging.returncode == status, stderr
    said = "terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted"
    assert stderr.splitlines()[-1] == f"dfqs-merge: {said}; nothing was written"
    assert "Traceback" not in stderr
    assert not out.exists() and leftovers(tmp_path) == [] and fingerprint(shards) == before


@pytest.mark.parametrize("append", [False, True], ids=["kernel-copy", "fallback-to-read-write"])
def test_copy_range_copies_exactly_whichever_copier_the_kernel_allows(tmp_path: Path, append: bool) -> None:
    """A target opened O_APPEND is one copy_file_range (EBADF) and sendfile (EINVAL) refuse: the bounded loop takes over."""
    source_path = tmp_path / "source.bin"
    source_path.write_bytes(os.urandom(3_000_001))
    source = os.open(source_path, os.O_RDONLY)
    target = os.open(tmp_path / "target.bin", os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else 0))
    advanced: list[int] = []
    try:
        os.write(target, b"head")
        copy_range(source, target, 17, 2_999_000, 65_536, advanced.append)
    finally:
        os.close(source), os.close(target)
    assert (tmp_path / "target.bin").read_bytes() == b"head" + source_path.read_bytes()[17 : 17 + 2_999_000]
    assert sum(advanced) == 2_999_000 and max(advanced) <= 65_536
    assert [copier.__name__ for copier in COPIERS] == ["_copy_file_range", "_sendfile", "_read_write"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_says_bytes_rate_and_time_left(tmp_path: Path) -> None:
    now = [0.0]
    log = io.StringIO()
    progress = Progress(400_000_000, log, clock=lambda: now[0])
    for _ in range(4):
        now[0] += 2.5
        progress.advance(50_000_000)
    assert log.getvalue().splitlines() == [
        "dfqs-merge: 100.00 MB of 400.00 MB (25%), 20.00 MB/s, 15 s left",
        "dfqs-merge: 200.00 MB of 400.00 MB (50%), 20.00 MB/s, 10 s left",
    ]  # a line every 5 s in a log
    terminal = _Terminal()
    progress = Progress(400_000_000, terminal, clock=lambda: now[0])
    progress.finish()
    assert terminal.getvalue() == ""  # nothing drawn, nothing to end
    now[0] += 1
    progress.advance(100_000_000)
    now[0] += 3
    progress.advance(300_000_000)
    progress.finish()
    assert terminal.getvalue() == (
        "\rdfqs-merge: 100.00 MB of 400.00 MB (25%), 100.00 MB/s, 3 s left\033[K"
        "\rdfqs-merge: 400.00 MB of 400.00 MB (100%), 100.00 MB/s, 0 s left\033[K"
        "\rdfqs-merge: 400.00 MB of 400.00 MB (100%), 100.00 MB/s, 0 s left\033[K\n"
    )


def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "dfqs-merge"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    assert "usage: dfqs-merge [-h] -o OUT.gguf [--force] SHARD [SHARD ...]" in result.stdout
