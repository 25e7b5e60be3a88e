"""Split GGUF releases: the set of shards a file belongs to, found and checked the way llama.cpp loads it.

llama.cpp loads a split model from its first shard: it reads `split.count`
there, takes the prefix off the file name (`llama_split_prefix`), opens
`PREFIX-%05d-of-%05d.gguf` for every other shard (`llama_split_path`), checks
each one's `split.no`, refuses a tensor met twice and compares the tensors
found with the first shard's `split.tensors.count`. This module finds the same
files and reads only their headers, so that a 60 GB release is judged in
milliseconds. Every problem is a sentence naming the file, because the person
reading it has to go and fetch or replace that file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gguf.constants import Keys

from .header import GGUFHeader, HeaderError, read_header

SHARD_NAME = re.compile(r"^(?P<prefix>.+)-(?P<number>\d{5,})-of-(?P<count>\d{5,})\.gguf$")
SPLIT_KEYS = (Keys.Split.LLM_KV_SPLIT_NO, Keys.Split.LLM_KV_SPLIT_COUNT, Keys.Split.LLM_KV_SPLIT_TENSORS_COUNT)
MAX_NAMED_TENSORS = 3


def shard_path(prefix: Path, number: int, count: int) -> Path:
    """llama_split_path: shard `number` (1-based) of `count` for the prefix `folder/NAME`."""
    return prefix.with_name(f"{prefix.name}-{number:05d}-of-{count:05d}.gguf")


def merged_path(prefix: Path) -> Path:
    """Where a merge of the set is written by default: the prefix with `.gguf`, beside the shards."""
    return prefix.with_name(f"{prefix.name}.gguf")


@dataclass(frozen=True)
class ShardName:
    """What a shard's file name says: its set's prefix, its number (1-based) and the set's size."""

    prefix: Path
    number: int
    count: int


def parse_shard_name(path: Path) -> ShardName | None:
    """The name as llama_split_prefix reads it; None for a name that llama.cpp would not take for a shard."""
    match = SHARD_NAME.match(path.name)
    if match is None:
        return None
    name = ShardName(path.with_name(match["prefix"]), int(match["number"]), int(match["count"]))
    if shard_path(name.prefix, name.number, name.count).name != path.name or not 1 <= name.number <= name.count:
        return None
    return name


@dataclass(frozen=True)
class Shard:
    """One readable shard of a set."""

    path: Path
    number: int  # 1-based, from its place in the set
    header: GGUFHeader

    @property
    def data_end(self) -> int:
        """Where its last tensor's data ends, relative to its data section: the range a merge copies."""
        return max((t.offset + t.nbytes for t in self.header.tensors), default=0)

    def split_value(self, key: str) -> int | None:
        value = self.header.metadata.get(key)
        return value if type(value) is int else None


@dataclass(frozen=True)
class SplitSet:
    """The shards of one split model as far as they were found, and what stands between them and one loadable model."""

    prefix: Path | None  # None when the file is not named like a shard: its siblings cannot be found
    count: int  # the shards the set has, by the file name (or split.count when the name says nothing)
    shards: tuple[Shard, ...]  # the readable shards, in order
    problems: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return not self.problems and len(self.shards) == self.count

    @property
    def first(self) -> Path | None:
        return None if self.prefix is None else shard_path(self.prefix, 1, self.count)

    @property
    def tensor_count(self) -> int:
        return sum(len(shard.header.tensors) for shard in self.shards)

    def as_evidence(self, limit: int) -> dict[str, Any]:
        return {
            "complete": self.complete,
            "count": self.count,
            "shards": [str(shard.path) for shard in self.shards],
            "tensors": self.tensor_count,
            "problems": list(self.problems[:limit]),
            "problem_count": len(self.problems),
        }


def read_split_set(path: Path, given: Sequence[Path] = ()) -> SplitSet:
    """The set `path` belongs to, found by name; with `given`, exactly those files must make up the set.

    `path` may be any shard of the set: llama.cpp needs the first one, and the
    set is named after it.
    """
    name = parse_shard_name(path)
    if name is None:
        return _unnamed(path)
    expected = [shard_path(name.prefix, number, name.count) for number in range(1, name.count + 1)]
    problems = _given_problems(expected, given) if given else []
    shards: list[Shard] = []
    for number, shard_file in enumerate(expected, start=1):
        shard, problem = _read_shard(shard_file, number, name.count, bool(given))
        problems += [problem] if problem else []
        shards += [shard] if shard else []
    first = next((shard for shard in shards if shard.number == 1), None)
    declared = first.split_value(Keys.Split.LLM_KV_SPLIT_TENSORS_COUNT) if first else None
    for shard in shards:
        problems += _split_key_problems(shard, name.count, declared)
    problems += _duplicate_tensors(shards)
    problems += _total_problems(shards, name.count, declared)
    return SplitSet(name.prefix, name.count, tuple(shards), tuple(problems))


def _unnamed(path: Path) -> SplitSet:
    """A file whose name llama.cpp would not read as a shard's: the set is this file alone, and that is the problem."""
    count = 1
    try:
        value = read_header(path).metadata.get(Keys.Split.LLM_KV_SPLIT_COUNT)
        count = value if type(value) is int and value > 0 else 1
    except HeaderError:
        pass
    problem = (
        f"{path.name} is not named like a shard (PREFIX-00001-of-{count:05d}.gguf), so llama.cpp cannot find the other shards"
        " of its set: rename the shards as llama-gguf-split names them"
    )
    return SplitSet(None, count, (), (problem,))


def _given_problems(expected: list[Path], given: Sequence[Path]) -> list[str]:
    """Files named on a command line must be the set exactly: none missing, none from elsewhere."""
    wanted = {_identity(path): path for path in expected}
    named = {_identity(path): path for path in given}
    problems = [_extra_file(path, expected) for key, path in named.items() if key not in wanted]
    problems += [
        f"shard {number} of {len(expected)} ({path.name}) was not given: give every shard of the set, or only the first"
        for number, path in enumerate(expected, start=1)
        if _identity(path) not in named and path.exists()
    ]
    return problems


def _extra_file(path: Path, expected: list[Path]) -> str:
    other = parse_shard_name(path)
    what = f"shard {other.number} of {other.count} of another set ({other.prefix.name})" if other else "not a shard of this set"
    return f"extra file: {path.name} is {what}; this set's shards are {expected[0].name} to {expected[-1].name}"


def _identity(path: Path) -> tuple[int, int] | Path:
    """The same file however it is spelled (a relative path, a symbolic link)."""
    try:
        status = path.stat()
    except OSError:
        return path.absolute()
    return (status.st_dev, status.st_ino)


def _read_shard(path: Path, number: int, count: int, given: bool) -> tuple[Shard | None, str | None]:
    if not path.exists():
        where = "was not given and is not" if given else "is not"
        return None, f"missing shard {number} of {count}: {path.name} {where} in {path.parent}"
    try:
        header = read_header(path)
    except HeaderError as error:
        return None, f"{path.name} (shard {number} of {count}) is not a GGUF file llama.cpp can read: {error}"
    shard = Shard(path, number, header)
    end = header.data_offset + shard.data_end
    if end > header.file_size:
        return (
            None,
            f"{path.name} (shard {number} of {count}) is truncated: its tensors need {end:,} bytes, the file has {header.file_size:,}",
        )
    return shard, None


def _split_key_problems(shard: Shard, count: int, declared_total: int | None) -> list[str]:
    name = shard.path.name
    split_count = shard.split_value(Keys.Split.LLM_KV_SPLIT_COUNT)
    split_no = shard.split_value(Keys.Split.LLM_KV_SPLIT_NO)
    total = shard.split_value(Keys.Split.LLM_KV_SPLIT_TENSORS_COUNT)
    problems = []
    if split_count != count:
        problems.append(f"split.count differs: {name} declares {split_count}, its name and the set say {count}: a shard of another set?")
    if split_no is None:
        problems.append(f"{name} has no integer split.no: llama.cpp cannot tell which shard it is")
    elif split_no != shard.number - 1:
        problems.append(
            f"numbering gap: {name} declares split.no={split_no} (shard {split_no + 1}) but its name makes it shard {shard.number}"
            " (a renamed or misnumbered shard)"
        )
    if declared_total is not None and total is not None and total != declared_total:
        problems.append(f"{name} declares split.tensors.count={total}, the first shard {declared_total}: a shard of another set?")
    return problems


def _total_problems(shards: list[Shard], count: int, declared: int | None) -> list[str]:
    """llama.cpp compares the distinct tensors of all shards with the first shard's split.tensors.count."""
    if count == 1 or len(shards) != count:
        return []  # a missing shard is already named; its tensors are missing with it
    if declared is None:
        return [f"{shards[0].path.name} has no integer {Keys.Split.LLM_KV_SPLIT_TENSORS_COUNT}: llama.cpp needs it to load the set"]
    found = len({tensor.name for shard in shards for tensor in shard.header.tensors})
    if found == declared:
        return []
    per_shard = ", ".join(f"{shard.path.name} {len(shard.header.tensors)}" for shard in shards)
    return [f"tensor total: the shards hold {found} distinct tensors ({per_shard}) but split.tensors.count declares {declared}"]


def _duplicate_tensors(shards: list[Shard]) -> list[str]:
    owner: dict[str, Shard] = {}
    shared: dict[tuple[int, int], list[str]] = {}
    for shard in shards:
        for tensor in shard.header.tensors:
            earlier = owner.setdefault(tensor.name, shard)
            if earlier is not shard:
                shared.setdefault((earlier.number, shard.number), []).append(tensor.name)
    by_number = {shard.number: shard for shard in shards}
    return [
        f"tensor {names[0]!r}{_more(names)} is in two shards, {by_number[a].path.name} and {by_number[b].path.name}:"
        " llama.cpp refuses a duplicated tensor"
        for (a, b), names in shared.items()
    ]


def _more(names: list[str]) -> str:
    if len(names) == 1:
        return ""
    shown = ", ".join(repr(name) for name in names[1:MAX_NAMED_TENSORS])
    rest = len(names) - MAX_NAMED_TENSORS
    return f" (and {shown}{f' and {rest} more' if rest > 0 else ''})"
