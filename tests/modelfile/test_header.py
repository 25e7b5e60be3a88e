"""The bounded GGUF header reader on valid, truncated and hostile files."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from gguf import GGUFReader
from gguf.constants import GGUFValueType

from pytest_dfqs.modelfile.demo import TinyModelSpec, vocabulary, write_model
from pytest_dfqs.modelfile.header import ArrayValue, HeaderError, read_header
from tests.gguf_bytes import RawTensor, gguf_string, minimal_model


@pytest.fixture(scope="module")
def moe_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("moe") / "tiny-moe.gguf"
    write_model(path)
    return path


def test_reads_what_gguf_reader_reads(moe_file: Path) -> None:
    ours = read_header(moe_file)
    theirs = GGUFReader(moe_file)
    assert [t.name for t in ours.tensors] == [t.name for t in theirs.tensors]
    assert [list(t.shape) for t in ours.tensors] == [[int(d) for d in t.shape] for t in theirs.tensors]
    assert [t.ggml_type for t in ours.tensors] == [int(t.tensor_type) for t in theirs.tensors]
    assert [ours.data_offset + t.offset for t in ours.tensors] == [int(t.data_offset) for t in theirs.tensors]
    assert [t.nbytes for t in ours.tensors] == [int(t.n_bytes) for t in theirs.tensors]
    assert set(ours.metadata) == set(theirs.fields) - {"GGUF.version", "GGUF.tensor_count", "GGUF.kv_count"}


def test_metadata_values(moe_file: Path) -> None:
    header = read_header(moe_file)
    spec = TinyModelSpec()
    assert header.version == 3
    assert header.architecture == "llama"
    assert header.metadata["llama.expert_count"] == spec.n_expert
    assert header.metadata["llama.attention.layer_norm_rms_epsilon"] == pytest.approx(1e-5)
    tokens = header.metadata["tokenizer.ggml.tokens"]
    assert isinstance(tokens, ArrayValue) and tokens.values == tuple(vocabulary())
    assert header.metadata_types["tokenizer.ggml.tokens"] == GGUFValueType.ARRAY


def test_small_arrays_are_decoded(tmp_path: Path) -> None:
    raw = minimal_model()
    raw.kv.append(("llama.ratios", GGUFValueType.ARRAY, (GGUFValueType.INT32, [0, 0, 4, 128])))
    header = read_header(raw.write(tmp_path / "m.gguf"))
    assert header.metadata["llama.ratios"].values == (0, 0, 4, 128)
    assert header.metadata["tokenizer.ggml.tokens"].values == ("<unk>", "<s>", "</s>", "a")


def test_large_arrays_keep_only_their_place(tmp_path: Path) -> None:
    raw = minimal_model()
    raw.kv.append(("llama.big", GGUFValueType.ARRAY, (GGUFValueType.UINT32, list(range(2000)))))
    big = read_header(raw.write(tmp_path / "m.gguf")).metadata["llama.big"]
    assert big.count == 2000 and big.values is None


def test_gguf_v2_is_accepted_and_noted(tmp_path: Path) -> None:
    raw = minimal_model()
    raw.version = 2
    header = read_header(raw.write(tmp_path / "v2.gguf"))
    assert header.version == 2
    assert [d.describe() for d in header.deviations] == ["version at byte 4: GGUF v2; the current version is 3"]


def test_invalid_utf8_is_a_deviation_with_its_place_not_an_error(tmp_path: Path) -> None:
    raw = minimal_model()
    raw.kv.append((b"dfqs.\xff", GGUFValueType.STRING, b"caf\xc3"))  # a key and a value that are not UTF-8
    header = read_header(raw.write(tmp_path / "latin.gguf"))
    key = next(k for k in header.metadata if k.startswith("dfqs."))
    assert key == "dfqs.\\xff" and header.metadata[key] == "caf\\xc3"  # shown with escapes, distinct from any valid name
    fields = [(d.field, d.offset) for d in header.deviations]
    key_at = header.metadata_offsets[key] + 8  # the string's bytes follow its 8-byte length
    assert fields == [(f"metadata key #{len(raw.kv) - 1}", key_at), (f"value of {key!r}", key_at + 6 + 4 + 8)]
    assert all("not valid UTF-8" in d.problem for d in header.deviations)


def test_every_truncation_of_the_header_is_a_header_error(moe_file: Path, tmp_path: Path) -> None:
    data = moe_file.read_bytes()
    header = read_header(moe_file)
    target = tmp_path / "cut.gguf"
    for cut in range(0, header.tensors[-1].info_offset + 40, 7):
        target.write_bytes(data[:cut])
        with pytest.raises(HeaderError) as error:
            read_header(target)
        assert error.value.offset <= cut, (cut, str(error.value))


def expect_error(tmp_path: Path, content: bytes, field: str, problem: str) -> HeaderError:
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises(HeaderError) as error:
        read_header(path)
    assert field in error.value.field and problem in error.value.problem, str(error.value)
    return error.value


def test_wrong_magic(tmp_path: Path) -> None:
    error = expect_error(tmp_path, b"GGML" + minimal_model().build()[4:], "magic", "not a GGUF file")
    assert error.offset == 0


@pytest.mark.parametrize(("version", "problem"), [(1, "not supported"), (4, "not supported"), (0, "invalid"), (0x03000000, "big-endian")])
def test_unsupported_versions(tmp_path: Path, version: int, problem: str) -> None:
    raw = minimal_model()
    raw.version = version
    assert expect_error(tmp_path, raw.build(), "version", problem).offset == 4


def test_absurd_tensor_count(tmp_path: Path) -> None:
    raw = minimal_model()
    raw.n_tensors = 2**60
    error = expect_error(tmp_path, raw.build(), "tensor count", f"declares {2**60} entries")
    assert error.offset == 8


def test_absurd_kv_count(tmp_path: Path) -> None:
    raw = minimal_model()
    raw.n_kv = 2**60
    assert expect_error(tmp_path, raw.build(), "metadata key/value count", "declares").offset == 16


def test_49_byte_file_declaring_2_62_array_elements(tmp_path: Path) -> None:
    content = struct.pack("<IIqq", 0x46554747, 3, 0, 1) + gguf_string("k") + struct.pack("<IIQ", 9, 0, 2**62)
    assert len(content) == 49
    expect_error(tmp_path, content, "length of 'k'", f"declares {2**62} UINT8 elements")


@pytest.mark.parametrize(("length", "problem"), [(10**6, "declares a string of 1000000 bytes"), (2**31, "exceeds the GGUF maximum")])
def test_string_length_past_end_of_file(tmp_path: Path, length: int, problem: str) -> None:
    content = struct.pack("<IIqq", 0x46554747, 3, 0, 1) + struct.pack("<Q", length) + b"abc" * 8
    assert expect_error(tmp_path, content, "metadata key #0", problem).offset == 24


def test_a_bad_element_of_a_string_array_is_named(tmp_path: Path) -> None:
    raw = minimal_model()
    content = raw.header_bytes()
    cut = content.index(b"</s>")  # inside tokenizer.ggml.tokens[2]
    error = expect_error(tmp_path, content[: cut + 2], "tokenizer.ggml.tokens[2]", "runs past the end of the file")
    assert error.offset == cut - 8
    huge = content.replace(struct.pack("<Q", 4) + b"</s>", struct.pack("<Q", 2**31) + b"</s>")
    expect_error(tmp_path, huge, "tokenizer.ggml.tokens[2]", "exceeds the GGUF maximum")


def test_unknown_ggml_type(tmp_path: Path) -> None:
    raw = minimal_model()
    raw.tensors[1] = RawTensor("blk.0.attn_norm.weight", (8,), ggml_type=0)
    content = raw.build().replace(
        gguf_string("blk.0.attn_norm.weight") + struct.pack("<Iq", 1, 8) + struct.pack("<I", 0),
        gguf_string("blk.0.attn_norm.weight") + struct.pack("<Iq", 1, 8) + struct.pack("<I", 99),
    )
    expect_error(tmp_path, content, "type of tensor 'blk.0.attn_norm.weight'", "unknown ggml type 99")


def test_duplicate_tensor_names(tmp_path: Path) -> None:
    raw = minimal_model()
    raw.tensors.append(RawTensor("output.weight", (8, 4)))
    expect_error(tmp_path, raw.build(), "tensor #3 name", "duplicate tensor name 'output.weight'")


def test_duplicate_keys(tmp_path: Path) -> None:
    raw = minimal_model()
    raw.kv.append(("llama.block_count", GGUFValueType.UINT32, 2))
    expect_error(tmp_path, raw.build(), "metadata key #5", "duplicate key 'llama.block_count'")


@pytest.mark.parametrize(
    ("tensor", "field", "problem"),
    [
        (RawTensor("t", (1, 1, 1, 1, 1)), "dimension count of tensor 't'", "5 dimensions"),
        (RawTensor("t", (8, -1)), "shape of tensor 't'", "negative dimension"),
        (RawTensor("t", (2**40, 2**40)), "shape of tensor 't'", "more than 2**63-1 elements"),
        (RawTensor("t", (100,), ggml_type=8), "type of tensor 't'", "not a multiple of its block size 32"),
        (RawTensor("x" * 64, (8,)), "tensor #3 name", "llama.cpp allows at most 63"),
    ],
)
def test_invalid_tensor_infos(tmp_path: Path, tensor: RawTensor, field: str, problem: str) -> None:
    raw = minimal_model()
    raw.tensors.append(tensor)
    raw.with_data = False
    expect_error(tmp_path, raw.build(), field, problem)


@pytest.mark.parametrize(
    ("value_type", "value", "problem"),
    [
        (GGUFValueType.UINT32, 48, "not a power of two"),
        (GGUFValueType.UINT64, 32, "must be of type UINT32"),
    ],
)
def test_bad_alignment(tmp_path: Path, value_type: GGUFValueType, value: int, problem: str) -> None:
    raw = minimal_model()
    raw.kv.append(("general.alignment", value_type, value))
    expect_error(tmp_path, raw.build(), "general.alignment", problem)


def test_nested_arrays_and_unknown_value_types(tmp_path: Path) -> None:
    nested = struct.pack("<IIqq", 0x46554747, 3, 0, 1) + gguf_string("k") + struct.pack("<IIQ", 9, 9, 1) + bytes(8)
    expect_error(tmp_path, nested, "element type of 'k'", "nested arrays")
    unknown = struct.pack("<IIqq", 0x46554747, 3, 0, 1) + gguf_string("k") + struct.pack("<I", 13) + bytes(8)
    expect_error(tmp_path, unknown, "type of 'k'", "unknown GGUF value type 13")


def test_empty_file(tmp_path: Path) -> None:
    expect_error(tmp_path, b"", "magic", "empty")


def test_reading_never_modifies_the_file(moe_file: Path) -> None:
    before = (moe_file.read_bytes(), moe_file.stat().st_mtime_ns)
    read_header(moe_file)
    assert (moe_file.read_bytes(), moe_file.stat().st_mtime_ns) == before


def test_random_corruptions_give_header_errors_or_valid_headers(moe_model: Path, tmp_path: Path) -> None:
    """Seeded byte flips all over the header: the reader answers with a header or a HeaderError, nothing else."""
    import random

    original = moe_model.read_bytes()
    header_end = read_header(moe_model).data_offset
    rng = random.Random(20261123)
    target = tmp_path / "mutant.gguf"
    outcomes = {"valid": 0, "error": 0}
    for _ in range(1500):
        data = bytearray(original[: header_end + 64])
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(header_end)] = rng.randrange(256)
        target.write_bytes(data)
        try:
            read_header(target)
            outcomes["valid"] += 1
        except HeaderError as error:
            assert 0 <= error.offset <= len(data) and error.field and error.problem
            outcomes["error"] += 1
    assert outcomes["error"] > 100 and outcomes["valid"] > 100  # both kinds of outcome were exercised
