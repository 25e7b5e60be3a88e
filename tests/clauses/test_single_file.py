"""DFQS-3.1 end to end: `pytest --dfqs-model` on conforming, split and broken files."""

from __future__ import annotations

import fnmatch
import os
import struct
from pathlib import Path

import pytest
from gguf.constants import GGUFValueType

from pytest_dfqs.modelfile.demo import TinyModelSpec, write_model
from pytest_dfqs.modelfile.header import read_header
from tests.conftest import Certification
from tests.gguf_bytes import RawGGUF, RawTensor, gguf_string, minimal_model


def test_conforming_moe_meets_the_single_file_clause(certify: Certification, moe_model: Path) -> None:
    result = certify.run(f"--dfqs-model={moe_model}", "-v")
    assert result.ret == 0  # INCOMPLETE at the static tier: a fast gate still passes, nothing failed
    result.stdout.fnmatch_lines(
        [
            "*test_single_file.py::test_single_file[[]DFQS-3.1-no-split-tiny-moe.gguf[]] PASSED*",
            "*DFQS v1.0 certification: tiny-moe.gguf*",
            "DFQS-3.1   SHALL   MET *",
            "verdict: INCOMPLETE at tier static*",
        ]
    )
    assert certify.clause("DFQS-3.1")["status"] == "MET"


def test_split_shard_is_not_single_file(certify: Certification, split_model: Path) -> None:
    result = certify.run(f"--dfqs-model={split_model}")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["DFQS-3.1   SHALL   NOT MET *", "verdict: NOT CONFORMANT at tier static*"])
    no_split = next(f for f in certify.clause("DFQS-3.1")["findings"] if f["check"] == "no-split")
    assert no_split["status"] == "NOT MET"
    command = f"dfqs-merge {split_model} -o {split_model.with_name('tiny-split.gguf')}"
    assert "shard 1 of 2" in no_split["summary"]
    assert no_split["summary"].endswith(f"the set is complete (2 shards, 23 tensors); merge it into one file with `{command}`")
    assert no_split["evidence"]["split_set"]["merge_command"] == command
    assert no_split["evidence"]["split_set"]["complete"] is True


def test_second_shard_misses_the_models_tensors(certify: Certification, split_model: Path) -> None:
    second = split_model.with_name("tiny-split-00002-of-00002.gguf")
    assert certify.run(f"--dfqs-model={second}").ret == 1
    findings = {f["check"]: f for f in certify.clause("DFQS-3.1")["findings"]}
    assert "shard 2 of 2" in findings["no-split"]["summary"]
    assert "cannot run alone" in findings["standalone"]["summary"]


def _truncate(source: Path, target: Path, keep: int) -> Path:
    target.write_bytes(source.read_bytes()[:keep])
    return target


def _hand_built(target: Path, change) -> Path:
    raw = minimal_model()
    change(raw)
    return raw.write(target)


def _set(attribute: str, value):
    return lambda raw: setattr(raw, attribute, value)


def _misalign(raw: RawGGUF) -> None:
    raw.tensors[1].offset = 136


def _overlap(raw: RawGGUF) -> None:
    raw.tensors[2].offset = 0


def _past_end(raw: RawGGUF) -> None:
    raw.tensors.append(RawTensor("blk.0.ffn_norm.weight", (8,), offset=1 << 40))


def _duplicate(raw: RawGGUF) -> None:
    raw.tensors.append(RawTensor("output.weight", (8, 4)))


def _string_past_end(target: Path) -> Path:
    content = minimal_model().build()
    name = gguf_string("llama.block_count")
    target.write_bytes(content.replace(name, struct.pack("<Q", 10**6) + name[8:]))
    return target


BROKEN = {
    "wrong-magic": (lambda p: _hand_built(p, _set("magic", 0x4C4D4747)), "gguf-header", "expected b'GGUF', found b'GGML'"),
    "version-1": (lambda p: _hand_built(p, _set("version", 1)), "gguf-header", "GGUF version 1 is not supported"),
    "version-9": (lambda p: _hand_built(p, _set("version", 9)), "gguf-header", "GGUF version 9 is not supported"),
    "absurd-tensor-count": (
        lambda p: _hand_built(p, _set("n_tensors", 2**60)),
        "gguf-header",
        "tensor count at byte 8: declares 1152921504606846976 entries",
    ),
    "absurd-kv-count": (lambda p: _hand_built(p, _set("n_kv", 2**60)), "gguf-header", "metadata key/value count at byte 16"),
    "misaligned": (lambda p: _hand_built(p, _misalign), "tensor-layout", "not a multiple of general.alignment 32"),
    "overlapping": (lambda p: _hand_built(p, _overlap), "tensor-layout", "overlap"),
    "offset-past-eof": (lambda p: _hand_built(p, _past_end), "tensors-in-file", "its data is not in this file"),
    "duplicate-names": (lambda p: _hand_built(p, _duplicate), "gguf-header", "duplicate tensor name 'output.weight'"),
    "string-past-eof": (_string_past_end, "gguf-header", "declares a string of 1000000 bytes but the file ends"),
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_file_is_not_met_with_a_specific_message(certify: Certification, tmp_path: Path, case: str) -> None:
    make, check, message = BROKEN[case]
    path = make(tmp_path / f"{case}.gguf")
    result = certify.run(f"--dfqs-model={path}")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["DFQS-3.1   SHALL   NOT MET *"])
    finding = next(f for f in certify.clause("DFQS-3.1")["findings"] if f["check"] == check)
    assert finding["status"] == "NOT MET" and message in finding["summary"], finding


@pytest.mark.timeout(30)
def test_unknown_ggml_type(certify: Certification, tmp_path: Path) -> None:
    path = minimal_model().write(tmp_path / "unknown-type.gguf")
    content = bytearray(path.read_bytes())
    name = b"blk.0.attn_norm.weight"
    type_at = content.index(name) + len(name) + 4 + 8  # n_dims (u32) and one dimension (i64)
    content[type_at : type_at + 4] = (77).to_bytes(4, "little")
    path.write_bytes(content)
    assert certify.run(f"--dfqs-model={path}").ret == 1
    assert "unknown ggml type 77" in certify.clause("DFQS-3.1")["reason"]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("keep", "check", "message"),
    [
        (100, "gguf-header", "truncated or corrupt file"),
        (-64, "tensors-in-file", "its data is not in this file"),
    ],
)
def test_truncated_files(certify: Certification, moe_model: Path, tmp_path: Path, keep: int, check: str, message: str) -> None:
    size = moe_model.stat().st_size
    path = _truncate(moe_model, tmp_path / "truncated.gguf", keep if keep > 0 else size + keep)
    assert certify.run(f"--dfqs-model={path}").ret == 1
    finding = next(f for f in certify.clause("DFQS-3.1")["findings"] if f["check"] == check)
    assert finding["status"] == "NOT MET" and message in finding["summary"], finding


def test_auxiliary_file_without_embeddings_is_not_standalone(certify: Certification, tmp_path: Path) -> None:
    path = tmp_path / "mtp-only.gguf"
    write_model(path, drop=("token_embd", "output."))
    assert certify.run(f"--dfqs-model={path}").ret == 1
    standalone = next(f for f in certify.clause("DFQS-3.1")["findings"] if f["check"] == "standalone")
    assert standalone["status"] == "NOT MET"
    assert "token_embd.weight" in standalone["summary"] and "needs its base model" in standalone["summary"]


def test_the_model_file_is_left_untouched(certify: Certification, moe_model: Path, tmp_path: Path) -> None:
    import hashlib

    before = (hashlib.sha256(moe_model.read_bytes()).hexdigest(), os.stat(moe_model).st_mtime_ns)
    certify.run(f"--dfqs-model={moe_model}", "--dfqs-sha256", before[0])
    assert (hashlib.sha256(moe_model.read_bytes()).hexdigest(), os.stat(moe_model).st_mtime_ns) == before


def _typed(key: str, value_type, value):
    def change(raw: RawGGUF) -> None:
        raw.kv.append((key, value_type, value))

    return change


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("key", "value_type", "value", "message"),
    [
        (
            "llama.expert_count",
            GGUFValueType.STRING,
            "4",
            "llama.expert_count (key at byte * is STRING; llama.cpp reads an unsigned integer",
        ),
        (
            "llama.expert_count",
            GGUFValueType.INT32,
            -4,
            "llama.expert_count (key at byte * is negative (-4); llama.cpp reads an unsigned integer",
        ),
        ("split.count", GGUFValueType.ARRAY, (GGUFValueType.UINT16, [2, 2]), "split.count (key at byte * is ARRAY*"),
    ],
)
def test_wrongly_typed_metadata_is_not_met(certify: Certification, tmp_path: Path, key, value_type, value, message: str) -> None:
    path = _hand_built(tmp_path / "typed.gguf", _typed(key, value_type, value))
    assert certify.run(f"--dfqs-model={path}").ret == 1
    header = next(f for f in certify.clause("DFQS-3.1")["findings"] if f["check"] == "gguf-header")
    assert header["status"] == "NOT MET" and fnmatch.fnmatch(header["summary"], message), header["summary"]


def test_expert_tensors_without_a_valid_expert_count(certify: Certification, tmp_path: Path) -> None:
    raw = minimal_model()
    raw.kv.append(("llama.expert_count", GGUFValueType.STRING, "4"))
    raw.tensors += [RawTensor("blk.0.ffn_gate_inp.weight", (8, 4)), RawTensor("blk.0.ffn_up_exps.weight", (8, 16, 4))]
    path = raw.write(tmp_path / "bad-experts.gguf")
    assert certify.run(f"--dfqs-model={path}").ret == 1
    routing = findings_of(certify, "DFQS-3.3")["router-structure"]
    assert routing["status"] == "NOT MET" and "routed expert tensors (*_exps) but llama.expert_count is '4'" in routing["summary"]


def test_a_file_that_cannot_be_mapped(certify: Certification) -> None:
    special = Path("/sys/devices/system/cpu/online")
    if not special.is_file():
        pytest.skip("no sysfs here")
    result = certify.run(f"--dfqs-model={special}")
    assert result.ret == 1
    assert "cannot be read as a GGUF file" in certify.clause("DFQS-3.1")["reason"]


def findings_of(certify: Certification, clause: str) -> dict[str, dict]:
    return {f["check"]: f for f in certify.clause(clause)["findings"]}


def test_what_llama_cpp_tolerates_is_information_not_failure(certify: Certification, tmp_path: Path) -> None:
    """GGUF v2 and a name that is not UTF-8: llama.cpp loads and runs the file, so DFQS-3.1 is MET with a note."""
    target = tmp_path / "lenient.gguf"
    write_model(target, TinyModelSpec(context_length=4096), name="lenient-ZZZZ")
    data = bytearray(target.read_bytes())
    assert data.count(b"lenient-ZZZZ") == 1
    at = data.index(b"lenient-ZZZZ") + len(b"lenient-")
    data[at : at + 4] = b"\xff\xfe\xfd\xfc"
    data[4:8] = struct.pack("<I", 2)
    target.write_bytes(data)
    result = certify.run(f"--dfqs-model={target}", "--dfqs-tier=runtime")
    assert certify.clause("DFQS-3.1")["status"] == "MET", result.stdout.str()
    found = findings_of(certify, "DFQS-3.1")
    assert found["llama-cpp-executes"]["status"] == "MET"
    header = found["gguf-header"]
    assert "informational, llama.cpp reads it anyway: version at byte 4: GGUF v2" in header["summary"]
    assert header["evidence"]["spec_deviations"] == [
        "version at byte 4: GGUF v2; the current version is 3",
        f"value of 'general.name' at byte {at - len(b'lenient-')}: is not valid UTF-8 (invalid start byte at position 8);"
        " shown with \\x escapes",
    ]


def test_a_vocab_size_the_token_list_contradicts_is_a_note(certify: Certification, tmp_path: Path) -> None:
    """llama.cpp sizes the vocabulary by the token list and runs the file: a contradicting vocab_size is information."""
    target = tmp_path / "vocab-size.gguf"
    write_model(target, TinyModelSpec(context_length=4096), name="vocab-size", counts={"llama.vocab_size": 300})
    certify.run(f"--dfqs-model={target}", "--dfqs-tier=runtime")
    found = findings_of(certify, "DFQS-3.1")
    assert found["llama-cpp-executes"]["status"] == "MET"
    header = found["gguf-header"]
    assert header["status"] == "MET"
    at = read_header(target).metadata_offsets["llama.vocab_size"]
    assert header["evidence"]["spec_deviations"] == [f"llama.vocab_size at byte {at}: declares 300 tokens, tokenizer.ggml.tokens lists 291"]


def test_a_file_rewritten_during_the_run_is_not_certified(certify: Certification, moe_model: Path, pytester: pytest.Pytester) -> None:
    """A plugin appends a byte to the model after the first test: DFQS-AI.1 is NOT MET, naming what changed."""
    model = pytester.path / "changing.gguf"
    model.write_bytes(moe_model.read_bytes())
    pytester.makepyfile(
        rewrite_model=f"""
        def pytest_runtest_teardown(item):
            if "DFQS-3.1-gguf-header" in item.nodeid:
                with open({str(model)!r}, "ab") as handle:
                    handle.write(b"x")
        """
    )
    result = certify.run(f"--dfqs-model={model}", "-p", "rewrite_model", "-p", "no:randomly")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    size = moe_model.stat().st_size
    result.stdout.fnmatch_lines(
        [f"DFQS-AI.1  SHALL   NOT MET         the file changed during certification (size {size} -> {size + 1}, mtime_ns *"]
    )
    assert certify.certificate()["verdict"] == "NOT CONFORMANT"
