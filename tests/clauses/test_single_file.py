"""DFQS-3.1 end to end: `pytest --dfqs-model` on conforming, split and broken files."""

from __future__ import annotations

import fnmatch
import os
import struct
from importlib.util import find_spec
from pathlib import Path

import pytest
from gguf.constants import GGUFValueType

from pytest_dfqs.clauses.registry import finding
from pytest_dfqs.model import ModelUnderTest
from pytest_dfqs.modelfile.demo import TinyModelSpec, write_model
from pytest_dfqs.modelfile.header import read_header
from pytest_dfqs.reports.terminal import model_header_lines
from pytest_dfqs.runtime.client import ModelRuntime, RuntimeOptions, WorkerUnavailable
from pytest_dfqs.verdict import Status
from tests.conftest import Certification, SharedRun, validate_certificate
from tests.gguf_bytes import RawGGUF, RawTensor, gguf_string, minimal_model
from tests.machine_speed import llama_threads
from tests.static_tier import decided_statically
from tests.without_llama_cpp import hiding_llama_cpp


def test_conforming_moe_meets_the_single_file_clause(moe_static: SharedRun) -> None:
    result, certify = moe_static.result, moe_static
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


def test_split_shard_is_not_single_file(split_model: Path) -> None:
    """Decided in this process (tests/static_tier.py); a split shard end to end: tests/test_plugin.py's -x run."""
    decided = decided_statically(split_model)
    assert decided.status == Status.NOT_MET
    no_split = decided.findings["no-split"]
    assert no_split.status == Status.NOT_MET
    command = f"dfqs-merge {split_model} -o {split_model.with_name('tiny-split.gguf')}"
    assert "shard 1 of 2" in no_split.summary
    assert no_split.summary.endswith(f"the set is complete (2 shards, 23 tensors); merge it into one file with `{command}`")
    assert no_split.evidence["split_set"]["merge_command"] == command
    assert no_split.evidence["split_set"]["complete"] is True


def test_second_shard_misses_the_models_tensors(split_model: Path) -> None:
    second = split_model.with_name("tiny-split-00002-of-00002.gguf")
    decided = decided_statically(second)
    assert decided.status == Status.NOT_MET
    assert "shard 2 of 2" in decided.findings["no-split"].summary
    assert "cannot run alone" in decided.findings["standalone"].summary


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
def test_broken_file_is_not_met_with_a_specific_message(tmp_path: Path, case: str) -> None:
    """Decided in this process (tests/static_tier.py); a broken header end to end: test_a_broken_header_fails_the_run."""
    make, check, message = BROKEN[case]
    path = make(tmp_path / f"{case}.gguf")
    decided = decided_statically(path)
    assert decided.status == Status.NOT_MET
    finding = decided.findings[check]
    assert finding.status == Status.NOT_MET and message in finding.summary, finding


def test_a_broken_header_fails_the_run(certify: Certification, tmp_path: Path) -> None:
    """One of the cases above end to end: the clause table, the verdict and the certificate say it."""
    make, check, message = BROKEN["duplicate-names"]
    path = make(tmp_path / "duplicate-names.gguf")
    result = certify.run(f"--dfqs-model={path}")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [f"DFQS-3.1   SHALL   NOT MET         invalid GGUF header: *{message}*", "verdict: NOT CONFORMANT at tier static*"]
    )
    finding = next(f for f in certify.clause("DFQS-3.1")["findings"] if f["check"] == check)
    assert finding["status"] == "NOT MET" and message in finding["summary"], finding


@pytest.mark.timeout(30)
def test_unknown_ggml_type(tmp_path: Path) -> None:
    path = minimal_model().write(tmp_path / "unknown-type.gguf")
    content = bytearray(path.read_bytes())
    name = b"blk.0.attn_norm.weight"
    type_at = content.index(name) + len(name) + 4 + 8  # n_dims (u32) and one dimension (i64)
    content[type_at : type_at + 4] = (77).to_bytes(4, "little")
    path.write_bytes(content)
    decided = decided_statically(path)
    assert decided.status == Status.NOT_MET
    assert "unknown ggml type 77" in decided.reason


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("keep", "check", "message"),
    [
        (100, "gguf-header", "truncated or corrupt file"),
        (-64, "tensors-in-file", "its data is not in this file"),
    ],
)
def test_truncated_files(moe_model: Path, tmp_path: Path, keep: int, check: str, message: str) -> None:
    size = moe_model.stat().st_size
    path = _truncate(moe_model, tmp_path / "truncated.gguf", keep if keep > 0 else size + keep)
    decided = decided_statically(path)
    assert decided.status == Status.NOT_MET
    finding = decided.findings[check]
    assert finding.status == Status.NOT_MET and message in finding.summary, finding


def test_auxiliary_file_without_embeddings_is_not_standalone(tmp_path: Path) -> None:
    path = tmp_path / "mtp-only.gguf"
    write_model(path, drop=("token_embd", "output."))
    decided = decided_statically(path)
    assert decided.status == Status.NOT_MET
    standalone = decided.findings["standalone"]
    assert standalone.status == Status.NOT_MET
    assert "token_embd.weight" in standalone.summary and "needs its base model" in standalone.summary


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
def test_wrongly_typed_metadata_is_not_met(tmp_path: Path, key, value_type, value, message: str) -> None:
    path = _hand_built(tmp_path / "typed.gguf", _typed(key, value_type, value))
    decided = decided_statically(path)
    assert decided.status == Status.NOT_MET
    header = decided.findings["gguf-header"]
    assert header.status == Status.NOT_MET and fnmatch.fnmatch(header.summary, message), header.summary


def test_expert_tensors_without_a_valid_expert_count(tmp_path: Path) -> None:
    raw = minimal_model()
    raw.kv.append(("llama.expert_count", GGUFValueType.STRING, "4"))
    raw.tensors += [RawTensor("blk.0.ffn_gate_inp.weight", (8, 4)), RawTensor("blk.0.ffn_up_exps.weight", (8, 16, 4))]
    path = raw.write(tmp_path / "bad-experts.gguf")
    assert decided_statically(path).status == Status.NOT_MET
    routing = decided_statically(path, "DFQS-3.3").findings["router-structure"]
    assert routing.status == Status.NOT_MET and "routed expert tensors (*_exps) but llama.expert_count is '4'" in routing.summary


def test_a_file_that_cannot_be_mapped() -> None:
    special = Path("/sys/devices/system/cpu/online")
    if not special.is_file():
        pytest.skip("no sysfs here")
    decided = decided_statically(special)
    assert decided.status == Status.NOT_MET
    assert "cannot be read as a GGUF file" in decided.reason


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
    found = certify.findings("DFQS-3.1")
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
    found = certify.findings("DFQS-3.1")
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


# llama.cpp judges the header at the static tier (llama-cpp-loads): its refusal, its memory plan, and the rules
# deciding where no worker can be had.

QUOTE = "check_tensor_dims: tensor 'blk.0.ffn_norm.weight' not found"  # llama.cpp's own words
REFUSAL = f"llama.cpp refuses to load this model: {QUOTE}"


@pytest.mark.timeout(60)
def test_llama_cpp_refuses_a_missing_tensor_before_a_weight_is_read(certify: Certification, smollm2_without_a_norm: Path) -> None:
    result = certify.run(f"--dfqs-model={smollm2_without_a_norm}", "-v")
    assert result.ret == 1 and "errors" not in result.parseoutcomes()
    result.stdout.fnmatch_lines(
        [
            f"  llama.cpp, no weight read: it refuses this file: {QUOTE}",
            "*test_single_file[[]DFQS-3.1-llama-cpp-loads-SmolLM2-no-ffn-norm.gguf[]] FAILED*",
            "DFQS-3.1   SHALL   NOT MET         llama.cpp refuses to load this model: check_tensor_dims: tensor 'blk.0.ffn_norm.weight'*",
            "verdict: NOT CONFORMANT at tier static*",
        ]
    )
    clause = certify.clause("DFQS-3.1")
    assert clause["status"] == "NOT MET" and clause["reason"].splitlines()[0] == REFUSAL
    found = certify.findings("DFQS-3.1")
    assert found["llama-cpp-loads"]["status"] == "NOT MET" and found["llama-cpp-loads"]["summary"].splitlines()[0] == REFUSAL
    rules = found["loader-rules"]
    assert rules["status"] == "NOT APPLICABLE"
    assert rules["summary"] == "llama.cpp's own loader judged this file (llama-cpp-loads): its rules are not needed"
    assert rules["evidence"] == {"llama_cpp_verdict": "NOT MET"}
    assert found["llama-cpp-executes"]["status"] == "NOT EVALUATED"  # the full load is the runtime tier's
    assert certify.certificate()["models"][0]["memory_plan"] is None  # llama.cpp refused: no plan


@pytest.mark.timeout(60)
def test_without_llama_cpp_python_the_rules_decide(certify: Certification, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PYTHONPATH", hiding_llama_cpp(tmp_path / "hidden"))
    result = certify.run("--dfqs-model=demo", "-v")
    assert result.ret == 0 and "errors" not in result.parseoutcomes()
    result.stdout.fnmatch_lines(
        [
            "  llama.cpp cannot judge the file here, the rules (loader-rules) decide: llama-cpp-python is not installed",
            "*test_single_file[[]DFQS-3.1-llama-cpp-loads-dfqs-demo-moe.gguf[]] SKIPPED*",
            "DFQS-3.1   SHALL   MET             the rules accept it, no llama.cpp here (6 checks); its full load at --dfqs-tier runtime",
            "verdict: INCOMPLETE at tier static*",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    found = certify.findings("DFQS-3.1")
    loads = found["llama-cpp-loads"]
    assert loads["status"] == "NOT APPLICABLE"
    assert loads["summary"] == "llama.cpp cannot judge the file here, the rules (loader-rules) decide: llama-cpp-python is not installed"
    assert loads["evidence"]["reason"] == "llama-cpp-python is not installed"
    assert found["loader-rules"]["status"] == "MET"  # the rules judged, and found nothing llama.cpp refuses
    model = certify.certificate()["models"][0]
    assert model["memory_plan"] is None and model["runtime"]["workers_started"] == 0
    assert not [(c["id"], f["check"]) for c in model["clauses"] for f in c["findings"] if f["status"] == "ERROR"]
    validate_certificate(certify.certificate())


@pytest.mark.timeout(60)
def test_without_llama_cpp_python_the_rules_give_a_verdict_on_a_missing_tensor(
    certify: Certification, smollm2_without_a_norm: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The rules are still being taught what llama.cpp refuses: only that they decide, calmly, is asserted here."""
    monkeypatch.setenv("PYTHONPATH", hiding_llama_cpp(tmp_path / "hidden"))
    result = certify.run(f"--dfqs-model={smollm2_without_a_norm}")
    assert "errors" not in result.parseoutcomes() and "Traceback" not in result.stdout.str()
    clause = certify.clause("DFQS-3.1")
    assert clause["status"] in ("MET", "NOT MET")
    assert result.ret == (1 if clause["status"] == "NOT MET" else 0)
    assert certify.findings("DFQS-3.1")["llama-cpp-loads"]["status"] == "NOT APPLICABLE"
    assert certify.findings("DFQS-3.1")["loader-rules"]["status"] == clause["status"]


@pytest.mark.timeout(60)
def test_a_worker_that_cannot_start_leaves_the_rules_to_judge(
    runtime_moe_model: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert find_spec("llama_cpp") is not None  # installed here: only the worker, started with the PYTHONPATH below, lacks it
    monkeypatch.setenv("PYTHONPATH", hiding_llama_cpp(tmp_path / "hidden"))
    runtime = ModelRuntime(runtime_moe_model, RuntimeOptions(threads=llama_threads(), ctx=4096))
    try:
        with pytest.raises(WorkerUnavailable) as raised:
            runtime.judged()
        reason = raised.value.reason
        assert reason == "the llama.cpp worker could not start (ModuleNotFoundError: import of llama_cpp halted; None in sys.modules)"
        assert "llama.cpp worker died with exit status 1 during 'start'" in str(raised.value)
        with pytest.raises(WorkerUnavailable) as again:  # remembered, not tried again: one process was started, once
            runtime.judged()
        assert again.value.reason == reason and runtime.workers_started == 1
    finally:
        runtime.close()
    decided = decided_statically(runtime_moe_model)  # as the static tier records them: the runtime's check needs its tier
    loads = decided.findings["llama-cpp-loads"]
    assert (loads.status, loads.summary) == (
        Status.NOT_APPLICABLE,
        f"llama.cpp cannot judge the file here, the rules (loader-rules) decide: {reason}",
    )
    assert loads.evidence["reason"] == reason
    assert decided.findings["loader-rules"].status == Status.MET
    assert [f.check for f in decided.findings.values() if f.status == Status.ERROR] == []
    assert decided.status == Status.MET
    assert decided.reason == "the rules accept it, no llama.cpp here (6 checks); its full load at --dfqs-tier runtime"


HIDE_IN_THE_WORKER = """\
import sys
if sys.orig_argv[1:3] == ["-m", "pytest_dfqs.runtime.worker"]:  # only llama.cpp's worker: pytest itself finds llama_cpp
    sys.modules["llama_cpp"] = None
"""


@pytest.mark.timeout(60)
def test_a_run_whose_worker_cannot_start_is_judged_by_the_rules(
    certify: Certification, runtime_moe_model: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """llama-cpp-python is installed, but its worker dies importing it (before its ready line): the rules decide, calmly."""
    (tmp_path / "sitecustomize.py").write_text(HIDE_IN_THE_WORKER)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    result = certify.run(f"--dfqs-model={runtime_moe_model}")
    assert result.ret == 0 and "errors" not in result.parseoutcomes()
    reason = "the llama.cpp worker could not start (ModuleNotFoundError: import of llama_cpp halted; None in sys.modules)"
    result.stdout.fnmatch_lines(
        [
            f"  llama.cpp cannot judge the file here, the rules (loader-rules) decide: {reason}",
            "DFQS-3.1   SHALL   MET             the rules accept it, no llama.cpp here (6 checks); its full load at --dfqs-tier runtime",
        ]
    )
    found = certify.findings("DFQS-3.1")
    assert (found["llama-cpp-loads"]["status"], found["llama-cpp-loads"]["evidence"]["reason"]) == ("NOT APPLICABLE", reason)
    assert found["loader-rules"]["status"] == "MET"
    model = certify.certificate()["models"][0]
    assert model["memory_plan"] is None and model["runtime"]["workers_started"] == 1  # started once, never again
    assert not [(c["id"], f["check"]) for c in model["clauses"] for f in c["findings"] if f["status"] == "ERROR"]


@pytest.mark.timeout(60)
def test_llama_cpp_s_memory_plan_is_in_the_header_and_the_certificate(runtime_moe_static: SharedRun, runtime_moe_model: Path) -> None:
    result, certify = runtime_moe_static.result, runtime_moe_static
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "dfqs model: tiny-moe-4k.gguf *",
            "  llama.cpp, no weight read: at a 4,096-token context it needs about * MiB (weights 0.5 MiB, *)"
            "; this machine has * available: it fits",
            "DFQS-3.1   SHALL   MET             llama.cpp accepts it, no weight read (6 checks); its full load at --dfqs-tier runtime",
        ]
    )
    certificate = certify.certificate()
    validate_certificate(certificate)
    plan = certificate["models"][0]["memory_plan"]
    assert plan["ctx"] == 4096 and plan["projected_from_ctx"] is None
    assert plan["needs_bytes"] > plan["weights_bytes"] > 0
    assert plan["weights_bytes"] == sum(t.nbytes for t in read_header(runtime_moe_model).tensors)  # llama.cpp's model size
    loads = certify.findings("DFQS-3.1")["llama-cpp-loads"]
    assert loads["status"] == "MET" and loads["evidence"]["memory_plan"] == plan
    assert certify.findings("DFQS-3.1")["loader-rules"] == {
        "check": "loader-rules",
        "status": "NOT APPLICABLE",
        "summary": "llama.cpp's own loader judged this file (llama-cpp-loads): its rules are not needed",
        "evidence": {"llama_cpp_verdict": "MET"},
    }


HOSTILE = ["absurd-tensor-count", "absurd-kv-count", "string-past-eof"]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", HOSTILE)
def test_a_header_the_reader_refuses_never_reaches_llama_cpp(tmp_path: Path, case: str) -> None:
    make, _, message = BROKEN[case]
    path = make(tmp_path / f"{case}.gguf")
    model = ModelUnderTest(path, path.name)
    try:
        model.begin_judging()  # as the session's start does
        header_lines = model_header_lines(model)
        header = finding(model, "gguf-header")
        loads = finding(model, "llama-cpp-loads")
        rules = finding(model, "loader-rules")
        assert model.worker_view()["workers_started"] == 0  # no llama.cpp worker was started for this file
    finally:
        model.close()
    assert header.status == Status.NOT_MET and header.summary.startswith("invalid GGUF header: ") and message in header.summary
    # said once, by the header check; the others refer to it, with the same place in the file
    for refers in (loads, rules):
        assert refers.status == Status.NOT_MET and refers.summary == "no readable GGUF header (see DFQS-3.1 gguf-header)"
        assert refers.evidence["offset"] == header.evidence["offset"] and refers.evidence["see"] == "DFQS-3.1 gguf-header"
    assert header_lines[1] == f"  {header.summary}"
