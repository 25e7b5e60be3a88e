"""Split sets: the shards llama.cpp finds from the first one, and every problem that stops them loading or merging."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from gguf.constants import GGUFValueType

from pytest_dfqs.clauses.single_file import check_no_split
from pytest_dfqs.model import ModelUnderTest
from pytest_dfqs.modelfile.header import read_header
from pytest_dfqs.modelfile.split import parse_shard_name, read_split_set, shard_path
from pytest_dfqs.verdict import Status
from tests.gguf_bytes import SCALAR_FORMATS
from tests.gguf_split import split_gguf
from tests.llama_greedy import greedy_run

SPLIT_KEYS = ["split.no", "split.tensors.count", "split.count"]


def _split(model: Path, folder: Path, max_tensors: int = 12) -> list[Path]:
    folder.mkdir(exist_ok=True)
    return split_gguf(model, folder / "tiny", max_tensors)


def set_split_value(path: Path, key: str, value: int) -> None:
    """Rewrite one split key's value in place, with the type it has."""
    header = read_header(path)
    at = header.metadata_offsets[key] + 8 + len(key.encode()) + 4
    data = bytearray(path.read_bytes())
    fmt = SCALAR_FORMATS[GGUFValueType(header.metadata_types[key])]
    data[at : at + struct.calcsize(fmt)] = struct.pack(fmt, value)
    path.write_bytes(data)


def test_llama_cpp_loads_the_helpers_split_as_the_original(moe_model: Path, tmp_path: Path) -> None:
    """llama.cpp, given the first shard, finds the second by name; its greedy tokens and logits equal the unsplit file's."""
    shards = _split(moe_model, tmp_path)
    assert [p.name for p in shards] == ["tiny-00001-of-00002.gguf", "tiny-00002-of-00002.gguf"]
    original, split = greedy_run(moe_model), greedy_run(shards[0])
    assert split == original
    assert len(set(original.tokens)) > 1 and any(original.first_logits)  # a real continuation, not a model of zeros
    shards[1].unlink()
    with pytest.raises(AssertionError, match="Failed to load model"):
        greedy_run(shards[0])  # the second shard really carries half of the model


def test_the_helper_writes_what_gguf_split_writes(moe_model: Path, tmp_path: Path) -> None:
    first, second = (read_header(path) for path in _split(moe_model, tmp_path))
    original = read_header(moe_model)
    assert list(first.metadata) == [*original.metadata, *SPLIT_KEYS] and list(second.metadata) == SPLIT_KEYS
    assert [first.metadata[key] for key in SPLIT_KEYS] == [0, 23, 2] and [second.metadata[key] for key in SPLIT_KEYS] == [1, 23, 2]
    assert [first.metadata_types[key] for key in SPLIT_KEYS] == [GGUFValueType.UINT16, GGUFValueType.INT32, GGUFValueType.UINT16]
    assert [t.name for t in first.tensors + second.tensors] == [t.name for t in original.tensors]
    assert (len(first.tensors), len(second.tensors)) == (12, 11)
    assert second.tensors[0].offset == 0 and first.data_offset % 32 == 0 and second.data_offset % 32 == 0


def test_shard_names_as_llama_cpp_reads_them(tmp_path: Path) -> None:
    name = parse_shard_name(tmp_path / "DeepSeek-V4-Flash-IQ1_S-00002-of-00003.gguf")
    assert name is not None and (name.prefix.name, name.number, name.count) == ("DeepSeek-V4-Flash-IQ1_S", 2, 3)
    assert shard_path(name.prefix, 1, 3) == tmp_path / "DeepSeek-V4-Flash-IQ1_S-00001-of-00003.gguf"
    for not_a_shard in ("model.gguf", "m-1-of-2.gguf", "m-00003-of-00002.gguf", "m-000001-of-00002.gguf", "m-00001-of-00002.bin"):
        assert parse_shard_name(tmp_path / not_a_shard) is None, not_a_shard


def test_a_complete_set_is_not_met_and_names_the_merge_command(moe_model: Path, tmp_path: Path) -> None:
    shards = _split(moe_model, tmp_path)
    split_set = read_split_set(shards[1])
    assert split_set.complete and split_set.problems == () and split_set.tensor_count == 23
    assert [shard.path for shard in split_set.shards] == shards
    finding = check_no_split(ModelUnderTest(shards[0], "first"))
    assert finding.status == Status.NOT_MET
    command = f"dfqs-merge {shards[0]} -o {tmp_path / 'tiny.gguf'}"
    assert finding.summary == (
        "this file is shard 1 of 2 (split.no=0, split.count=2): the set is complete (2 shards, 23 tensors);"
        f" merge it into one file with `{command}`"
    )
    assert finding.evidence["split_set"] == {
        "complete": True,
        "count": 2,
        "shards": [str(path) for path in shards],
        "tensors": 23,
        "problems": [],
        "problem_count": 0,
        "merge_command": command,
    }


def _missing(shards: list[Path]) -> None:
    shards[1].unlink()


def _count_differs(shards: list[Path]) -> None:
    set_split_value(shards[2], "split.count", 4)


def _numbering_gap(shards: list[Path]) -> None:
    set_split_value(shards[1], "split.no", 2)


def _duplicate(shards: list[Path]) -> None:
    """Shard 2's first tensor renamed to one of shard 1's (same length, so only the name changes)."""
    data = shards[1].read_bytes()
    assert data.count(b"blk.0.attn_q.weight") == 0
    shards[1].write_bytes(data.replace(b"blk.1.attn_q.weight", b"blk.0.attn_q.weight", 1))


def _total(shards: list[Path]) -> None:
    set_split_value(shards[0], "split.tensors.count", 24)


def _not_gguf(shards: list[Path]) -> None:
    shards[2].write_bytes(b"<html>Too many requests</html>")


def _truncated(shards: list[Path]) -> None:
    shards[2].write_bytes(shards[2].read_bytes()[:-1000])


FAULTS: dict[str, tuple[Callable[[list[Path]], None], str]] = {
    "missing-shard": (_missing, "missing shard 2 of 3: tiny-00002-of-00003.gguf is not in {folder}"),
    "split-count-differs": (_count_differs, "split.count differs: tiny-00003-of-00003.gguf declares 4, its name and the set say 3"),
    "numbering-gap": (
        _numbering_gap,
        "numbering gap: tiny-00002-of-00003.gguf declares split.no=2 (shard 3) but its name makes it shard 2",
    ),
    "duplicate-tensor": (
        _duplicate,
        "tensor 'blk.0.attn_q.weight' is in two shards, tiny-00001-of-00003.gguf and tiny-00002-of-00003.gguf",
    ),
    "tensor-total": (
        _total,
        "tensor total: the shards hold 23 distinct tensors (tiny-00001-of-00003.gguf 9, tiny-00002-of-00003.gguf 9,"
        " tiny-00003-of-00003.gguf 5) but split.tensors.count declares 24",
    ),
    "not-a-gguf": (_not_gguf, "tiny-00003-of-00003.gguf (shard 3 of 3) is not a GGUF file llama.cpp can read: magic at byte 0"),
    "truncated-shard": (_truncated, "tiny-00003-of-00003.gguf (shard 3 of 3) is truncated: its tensors need"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_each_fault_of_a_set_is_named(moe_model: Path, tmp_path: Path, fault: str) -> None:
    shards = _split(moe_model, tmp_path, max_tensors=9)
    assert len(shards) == 3
    damage, message = FAULTS[fault]
    damage(shards)
    split_set = read_split_set(shards[0])
    expected = message.format(folder=tmp_path)
    assert not split_set.complete and any(problem.startswith(expected) for problem in split_set.problems), split_set.problems
    finding = check_no_split(ModelUnderTest(shards[0], "first"))
    assert finding.status == Status.NOT_MET and finding.evidence["split_set"]["merge_command"] is None
    assert "the set is incomplete or inconsistent, so it cannot be merged as it is: " in finding.summary
    assert expected in finding.summary or len(split_set.problems) > 1


@pytest.mark.parametrize("fault", ["missing-shard", "numbering-gap", "duplicate-tensor", "tensor-total", "not-a-gguf", "truncated-shard"])
def test_llama_cpp_refuses_the_sets_the_check_faults(moe_model: Path, tmp_path: Path, fault: str) -> None:
    """Where llama.cpp loads split sets it is the judge: each of these faults stops it too."""
    shards = _split(moe_model, tmp_path, max_tensors=9)
    FAULTS[fault][0](shards)
    with pytest.raises(AssertionError, match="Failed to load model"):
        greedy_run(shards[0])


def test_a_shard_renamed_out_of_the_pattern_cannot_find_its_set(moe_model: Path, tmp_path: Path) -> None:
    shards = _split(moe_model, tmp_path)
    renamed = shards[0].rename(tmp_path / "tiny-part1.gguf")
    split_set = read_split_set(renamed)
    assert split_set.prefix is None and split_set.count == 2
    assert split_set.problems[0].startswith("tiny-part1.gguf is not named like a shard (PREFIX-00001-of-00002.gguf)")
    finding = check_no_split(ModelUnderTest(renamed, "renamed"))
    assert finding.status == Status.NOT_MET and "tiny-part1.gguf is not named like a shard" in finding.summary


def test_a_file_that_only_looks_like_a_shard_by_name(moe_model: Path, tmp_path: Path) -> None:
    """A whole model named like shard 1 of 2: NOT MET by its name, and the set check says what is missing."""
    named = tmp_path / "whole-00001-of-00002.gguf"
    named.write_bytes(moe_model.read_bytes())
    finding = check_no_split(ModelUnderTest(named, "named"))
    assert finding.status == Status.NOT_MET
    assert finding.summary.startswith("the file name marks shard 1 of 2 (whole-00001-of-00002.gguf): the set is incomplete")
    assert f"missing shard 2 of 2: whole-00002-of-00002.gguf is not in {tmp_path}" in finding.summary


def test_given_files_must_be_exactly_the_set(moe_model: Path, tmp_path: Path) -> None:
    shards = _split(moe_model, tmp_path / "a", max_tensors=9)
    others = _split(moe_model, tmp_path / "b", max_tensors=12)
    split_set = read_split_set(shards[0], given=[shards[0], shards[2], others[1]])
    assert split_set.problems[:2] == (
        "extra file: tiny-00002-of-00002.gguf is shard 2 of 2 of another set (tiny);"
        " this set's shards are tiny-00001-of-00003.gguf to tiny-00003-of-00003.gguf",
        "shard 2 of 3 (tiny-00002-of-00003.gguf) was not given: give every shard of the set, or only the first",
    )
    assert read_split_set(shards[0], given=shards).complete
