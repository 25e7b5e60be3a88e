"""dfqs-merge: one GGUF file from the shards of a split release, checked before and after, the shards left untouched.

DFQS-3.1 asks for single-file execution, and a split release fails it however
good its shards are; this is the way out that the finding names. The merge

- takes the first shard and finds the others by llama.cpp's naming, or takes
  every shard on the command line, and refuses a set that is not exactly one
  complete, consistent set (modelfile.split says what is wrong, naming the file);
- checks the free space of the output's folder before writing anything;
- writes one header: shard 1's key/value entries copied byte for byte without
  the `split.*` keys, and the tensor infos of all shards with their offsets
  moved by the data the shards before them hold;
- streams each shard's data section in one range, in bounded chunks, through
  the kernel (copy_file_range, else sendfile, else a bounded read/write loop),
  so memory stays flat whatever the model's size;
- writes into a hidden temporary file beside the output, checks the result with
  the static DFQS-3.1 checks, fsyncs it and only then renames it into place.

The shards are opened read-only and never modified. An interrupted merge
(Ctrl-C, SIGTERM) leaves neither the output nor the temporary file behind.
Problems are one line on stderr with exit status 2 (usage, the set, the output,
the space), 1 (reading or writing failed), 130 (Ctrl-C) or 143 (SIGTERM).
"""

from __future__ import annotations

import argparse
import errno
import os
import secrets
import shutil
import signal
import struct
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TextIO

from gguf.constants import GGUF_MAGIC

from .clauses.single_file import check_gguf_header, check_no_split, check_tensor_layout, check_tensors_in_file, layout_problems
from .model import ModelUnderTest
from .modelfile.header import GGUFHeader, HeaderError, align_up, metadata_spans, read_header
from .modelfile.integrity import file_identity, identity_change
from .modelfile.split import SPLIT_KEYS, SplitSet, parse_shard_name, read_split_set
from .modelfile.units import human_bytes
from .verdict import Status

CHUNK_BYTES = 64 << 20  # one copy call: large enough for full speed, small enough to stop promptly on a signal
CHUNK_ENV = "DFQS_MERGE_CHUNK"  # bytes per copy call, for tests that interrupt a merge mid-copy
PROGRESS_TTY_S = 0.25  # carriage-return updates on a terminal
PROGRESS_LOG_S = 5.0  # one line every few seconds in a log
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_TERMINATED = 128 + signal.SIGTERM
FALLBACK_ERRNOS = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.EBADF, errno.EPERM}
NOTHING_WRITTEN = "nothing was written"
_U64 = struct.Struct("<Q")


class MergeError(Exception):
    """A problem the person can act on, in one line: what, where, what to do."""

    def __init__(self, message: str, status: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.status = status


class Terminated(Exception):
    """SIGTERM, raised where the merge is so that it cleans up as after Ctrl-C."""


@dataclass(frozen=True)
class CopyRange:
    """One shard's data section: copied as one stream, then zeros up to the merged file's alignment."""

    path: Path
    start: int
    length: int
    padding: int


@dataclass(frozen=True)
class MergePlan:
    split_set: SplitSet
    output: Path
    header: bytes  # the merged file's header, padded to its alignment
    ranges: tuple[CopyRange, ...]

    @property
    def size(self) -> int:
        return len(self.header) + sum(part.length + part.padding for part in self.ranges)

    @property
    def data_bytes(self) -> int:
        return sum(part.length for part in self.ranges)


def plan_merge(shards: Sequence[Path], output: Path, force: bool = False) -> MergePlan:
    """Everything decided before a byte is written; a MergeError for a set or an output that will not do."""
    split_set = read_split_set(shards[0], given=shards if len(shards) > 1 else ())
    if split_set.problems:
        more = f" (and {len(split_set.problems) - 1} more problems)" if len(split_set.problems) > 1 else ""
        raise MergeError(f"{split_set.problems[0]}{more}; {NOTHING_WRITTEN}")
    check_output(output, split_set, force)
    first = split_set.shards[0].header
    ranges, tensors, base = [], [], 0
    for shard in split_set.shards:
        header = shard.header
        padded = align_up(shard.data_end, first.alignment)
        ranges.append(CopyRange(shard.path, header.data_offset, shard.data_end, padded - shard.data_end))
        tensors += _tensor_infos(header, base)
        base += padded
    return MergePlan(split_set, output, merged_header(first, tensors), tuple(ranges))


def check_output(output: Path, split_set: SplitSet, force: bool) -> None:
    """The output must be a new file (or --force), in an existing folder, not a shard, not named like one."""
    if not output.parent.is_dir():
        raise MergeError(f"the output folder {output.parent} does not exist: create it or choose another -o")
    if output.is_dir():
        raise MergeError(f"{output} is a folder: give the merged file's name with -o")
    for shard in split_set.shards:
        if output.exists() and os.path.samefile(output, shard.path) or output.absolute() == shard.path.absolute():
            raise MergeError(f"{output} is shard {shard.number} of the set: dfqs-merge never modifies its inputs, choose another -o")
    if parse_shard_name(output):
        raise MergeError(
            f"{output.name} is named like a shard: llama.cpp and DFQS-3.1 would take the merged file for one, choose another -o"
        )
    if output.exists() and not force:
        raise MergeError(f"{output} exists: pass --force to replace it (replaced only once the merged file is complete and checked)")


def check_space(needed: int, free: int, folder: Path) -> None:
    """Refuse before writing when the merged file cannot fit: a disk filled halfway helps nobody."""
    if needed > free:
        raise MergeError(
            f"not enough space in {folder}: the merged file needs {human_bytes(needed)}, {human_bytes(free)} are free;"
            f" free {human_bytes(needed - free)} or choose another -o"
        )


def merged_header(first: GGUFHeader, tensor_infos: list[bytes]) -> bytes:
    """Shard 1's key/value entries byte for byte, less the split keys; the given tensor infos; zeros to the alignment."""
    spans = metadata_spans(first)
    with open(first.path, "rb") as handle:
        handle.seek(min((start for start, _ in spans.values()), default=first.metadata_end))
        start_of_kv = handle.tell()
        kv = handle.read(first.metadata_end - start_of_kv)
    kept = [kv[start - start_of_kv : end - start_of_kv] for key, (start, end) in spans.items() if key not in SPLIT_KEYS]
    content = struct.pack("<IIqq", GGUF_MAGIC, first.version, len(tensor_infos), len(kept)) + b"".join(kept) + b"".join(tensor_infos)
    return content + bytes(align_up(len(content), first.alignment) - len(content))


def _tensor_infos(header: GGUFHeader, base: int) -> list[bytes]:
    """A shard's tensor infos as they are in its file (name, dimensions, type), each with its offset moved by `base`."""
    if not header.tensors:
        return []
    start = header.tensors[0].info_offset
    with open(header.path, "rb") as handle:
        handle.seek(start)
        infos = handle.read(header.data_offset - start)
    moved = []
    for tensor in header.tensors:
        at = tensor.info_offset - start
        name_length = _U64.unpack_from(infos, at)[0]
        offset_at = at + 8 + name_length + 4 + 8 * len(tensor.shape) + 4
        moved.append(infos[at:offset_at] + _U64.pack(base + tensor.offset))
    return moved


class Progress:
    """Bytes done, rate and time left on stderr: rewritten in place on a terminal, a line every few seconds in a log."""

    def __init__(self, total: int, stream: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.stream, self.clock = total, stream, clock
        self.tty = stream.isatty()
        self.done = 0
        self.started = self.shown = clock()
        self.drawn = False  # a terminal line to end

    def say(self, line: str) -> None:
        print(f"dfqs-merge: {line}", file=self.stream, flush=True)

    def advance(self, nbytes: int) -> None:
        self.done += nbytes
        now = self.clock()
        if now - self.shown >= (PROGRESS_TTY_S if self.tty else PROGRESS_LOG_S):
            self.shown = now
            self._show(now)

    def finish(self) -> None:
        """A terminal's progress line ends at 100%; a quick merge that drew none prints none."""
        if self.drawn:
            self._show(self.clock())
            self.stream.write("\n")

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate else float("inf")
        percent = 100 * self.done / self.total if self.total else 100
        eta = f"{left:.0f} s left" if left != float("inf") else "time left unknown"
        return f"{human_bytes(self.done)} of {human_bytes(self.total)} ({percent:.0f}%), {human_bytes(int(rate))}/s, {eta}"

    def _show(self, now: float) -> None:
        if self.tty:
            self.stream.write(f"\rdfqs-merge: {self.line(now)}\033[K")
            self.stream.flush()
            self.drawn = True
        else:
            self.say(self.line(now))


Copier = Callable[[int, int, int, int], int]


def _copy_file_range(source: int, target: int, offset: int, count: int) -> int:
    return os.copy_file_range(source, target, count, offset)


def _sendfile(source: int, target: int, offset: int, count: int) -> int:
    return os.sendfile(target, source, offset, count)


def _read_write(source: int, target: int, offset: int, count: int) -> int:
    data = os.pread(source, count, offset)
    write_all(target, data)
    return len(data)


def write_all(target: int, data: bytes) -> None:
    """os.write may write less than it is given."""
    view = memoryview(data)
    while view:
        view = view[os.write(target, view) :]


COPIERS: tuple[Copier, ...] = tuple(
    copier
    for copier, available in ((_copy_file_range, hasattr(os, "copy_file_range")), (_sendfile, hasattr(os, "sendfile")), (_read_write, True))
    if available
)


def copy_range(source: int, target: int, offset: int, length: int, chunk: int, advance: Callable[[int], None]) -> None:
    """`length` bytes of `source` from `offset` to `target`'s current position, in chunks of at most `chunk` bytes.

    The kernel copies where it can (copy_file_range, then sendfile); a copier
    the file systems refuse gives way to the next, the bounded read/write loop
    being the last. The target's position is where each one writes, so a switch
    in the middle loses nothing.
    """
    copiers = list(COPIERS)
    done = 0
    while done < length:
        count = min(chunk, length - done)
        try:
            copied = copiers[0](source, target, offset + done, count)
        except OSError as error:
            if error.errno not in FALLBACK_ERRNOS or len(copiers) == 1:
                raise
            copiers.pop(0)
            continue
        if copied == 0:
            raise MergeError(f"a shard ended {length - done:,} bytes early: it changed while merging; {NOTHING_WRITTEN}", EXIT_FAILED)
        done += copied
        advance(copied)


def chunk_size() -> int:
    raw = os.environ.get(CHUNK_ENV, "")
    if not raw:
        return CHUNK_BYTES
    if not raw.isdigit() or int(raw) == 0:
        raise MergeError(f"{CHUNK_ENV}={raw!r} is not a positive number of bytes: unset it or give one")
    return int(raw)


@dataclass(frozen=True)
class Merged:
    """What a merge did and where its time went: streaming the data, checking the result, making it durable."""

    plan: MergePlan
    copy_seconds: float
    check_seconds: float
    sync_seconds: float

    @property
    def copy_rate(self) -> float:
        """Bytes per second while the data sections streamed."""
        return self.plan.data_bytes / max(self.copy_seconds, 1e-9)


def merge(shards: Sequence[Path], output: Path, force: bool = False, stream: TextIO = sys.stderr) -> Merged:
    """Plan, check the space, write beside the output, check the result, then rename it into place."""
    chunk = chunk_size()
    plan = plan_merge(shards, output, force)
    check_space(plan.size, shutil.disk_usage(output.parent).free, output.parent)
    identities = {part.path: file_identity(part.path) for part in plan.ranges}
    progress = Progress(plan.data_bytes, stream)
    progress.say(f"merging {len(plan.ranges)} shards into {output} ({human_bytes(plan.size)}); the shards are opened read-only")
    temporary = output.with_name(f".{output.name}.dfqs-merge-{secrets.token_hex(4)}.partial")
    target = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        times = [time.perf_counter()]
        _write(plan, target, temporary, chunk, progress)
        times.append(time.perf_counter())
        _check_unchanged(identities)
        _check_result(temporary, plan)
        times.append(time.perf_counter())
        target = _sync_into_place(target, temporary, output)
        times.append(time.perf_counter())
    except BaseException:
        _discard(target, temporary)
        raise
    progress.finish()
    return Merged(plan, *(after - before for before, after in zip(times, times[1:])))


def _sync_into_place(target: int, temporary: Path, output: Path) -> int:
    """fsync, close, rename, fsync the folder: after a crash there is the old output or the whole new one."""
    os.fsync(target)
    os.close(target)
    os.replace(temporary, output)
    _fsync_folder(output.parent)
    return -1


def _write(plan: MergePlan, target: int, temporary: Path, chunk: int, progress: Progress) -> None:
    write_all(target, plan.header)
    _check_planned_layout(temporary)
    for part in plan.ranges:
        source = os.open(part.path, os.O_RDONLY)
        try:
            copy_range(source, target, part.start, part.length, chunk, progress.advance)
        finally:
            os.close(source)
        write_all(target, bytes(part.padding))


def _check_planned_layout(temporary: Path) -> None:
    """The header just written, read back before any data is copied: llama.cpp's layout rules, or stop."""
    try:
        problems = layout_problems(read_header(temporary))
    except HeaderError as error:
        raise MergeError(f"the merged header does not read back: {error}; {NOTHING_WRITTEN}", EXIT_FAILED) from None
    if problems:
        raise MergeError(f"the merged file could not be laid out as llama.cpp requires: {problems[0]}; {NOTHING_WRITTEN}")


def _check_unchanged(identities: dict[Path, dict[str, int]]) -> None:
    for path, before in identities.items():
        change = identity_change(before, path)
        if change:
            raise MergeError(f"{path.name} changed while merging ({change}); {NOTHING_WRITTEN}: merge again", EXIT_FAILED)


def _check_result(temporary: Path, plan: MergePlan) -> None:
    """The static DFQS-3.1 checks a single file must pass, on the merged file before it takes the output's name."""
    size = temporary.stat().st_size
    if size != plan.size:
        raise MergeError(f"the merged file has {size:,} bytes, {plan.size:,} were planned; {NOTHING_WRITTEN}", EXIT_FAILED)
    model = ModelUnderTest(temporary, plan.output.name)
    try:
        findings = [check(model) for check in (check_gguf_header, check_tensor_layout, check_tensors_in_file, check_no_split)]
    except HeaderError as error:
        raise MergeError(f"the merged header does not read back: {error}; {NOTHING_WRITTEN}", EXIT_FAILED) from None
    for finding in findings:
        if finding.status != Status.MET:
            raise MergeError(f"the merged file fails {finding.check}: {finding.summary}; {NOTHING_WRITTEN}", EXIT_FAILED)


def _discard(target: int, temporary: Path) -> None:
    """No half-written file survives a failure or an interrupt; a second signal meanwhile is ignored."""
    handlers = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        if target >= 0:
            os.close(target)
        temporary.unlink(missing_ok=True)
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])


def _fsync_folder(folder: Path) -> None:
    """The rename itself survives a crash only once the folder is on disk."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dfqs-merge",
        description="Merge the shards of a split GGUF release into one file, checked; the shards are never modified.",
    )
    parser.add_argument(
        "shards", nargs="+", type=Path, metavar="SHARD", help="the first shard (the others are found by name), or every shard"
    )
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="OUT.gguf", help="the merged file to write")
    parser.add_argument("--force", action="store_true", help="replace OUT.gguf if it exists (once the merged file is complete and checked)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: exit status 0, 1 (I/O failed), 2 (usage, set, output, space), 130 (Ctrl-C), 143 (SIGTERM)."""
    args = _parser().parse_args(argv)
    handlers = signal.signal(signal.SIGINT, signal.default_int_handler), signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    try:
        merged = merge(args.shards, args.output, args.force)
    except MergeError as error:
        return _fail(str(error), error.status)
    except KeyboardInterrupt:
        return _fail(f"interrupted; {NOTHING_WRITTEN}", EXIT_INTERRUPTED)
    except Terminated:
        return _fail(f"terminated (SIGTERM); {NOTHING_WRITTEN}", EXIT_TERMINATED)
    except OSError as error:
        where = f" {error.filename}" if error.filename else ""
        return _fail(f"{error.strerror or error}{where}; {NOTHING_WRITTEN}", EXIT_FAILED)
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    _report(merged, time.monotonic() - started)
    return 0


def _fail(message: str, status: int) -> int:
    print(f"dfqs-merge: {message}", file=sys.stderr, flush=True)
    return status


def _report(merged: Merged, seconds: float) -> None:
    plan = merged.plan
    print(
        f"dfqs-merge: wrote {plan.output} ({human_bytes(plan.size)}, {plan.split_set.tensor_count} tensors from {len(plan.ranges)} shards)"
        f" in {seconds:.1f} s: data streamed at {human_bytes(int(merged.copy_rate))}/s, checked in {merged.check_seconds:.2f} s,"
        f" synced to disk in {merged.sync_seconds:.1f} s; gguf-header, tensor-layout, tensors-in-file and no-split MET;"
        " the shards are unchanged"
    )


if __name__ == "__main__":
    sys.exit(main())
