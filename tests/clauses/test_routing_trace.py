"""Golden routing traces on real llama.cpp runs: record, verify, tamper, other thread counts, other files."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from pytest_dfqs.clauses.routing_trace import TOP_K, TRACE_PROMPTS, TRACE_SCHEMA, check_routing_trace
from pytest_dfqs.model import ModelUnderTest, TraceOptions
from pytest_dfqs.verdict import Status
from tests.conftest import Certification
from tests.machine_speed import llama_threads

pytestmark = pytest.mark.timeout(600)


Traced = tuple[ModelUnderTest, Status, str, dict]


def traced(path: Path, threads: int | None = None, record: Path | None = None, verify: Path | None = None) -> Traced:
    """The routing-trace check on `threads` threads, the tests' llama.cpp threads unless a test needs a count of its own."""
    threads = threads or llama_threads()
    model = ModelUnderTest(path, path.name, threads=threads, ctx=1024, trace_options=TraceOptions(record, verify))
    try:
        finding = check_routing_trace(model)
    finally:
        model.close()
    return model, finding.status, finding.summary, finding.evidence


@pytest.fixture(scope="module")
def recorded(runtime_moe_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny MoE's trace, recorded with one thread."""
    path = tmp_path_factory.mktemp("trace") / "tiny-moe.trace.json"
    _, status, summary, evidence = traced(runtime_moe_model, threads=1, record=path)
    assert status == Status.MET and f"recorded to {path}" in summary and evidence["bytes"] == path.stat().st_size
    return path


def test_a_trace_holds_what_its_schema_says(recorded: Path, runtime_moe_model: Path) -> None:
    document = json.loads(recorded.read_text())
    jsonschema.validate(document, json.loads(TRACE_SCHEMA.read_text()))
    assert [prompt["text"] for prompt in document["prompts"]] == list(TRACE_PROMPTS)
    assert document["conditions"]["threads"] == 1 and document["conditions"]["top_k"] == TOP_K
    first = document["prompts"][0]
    rows = len(first["tokens"])
    assert first["routing"]["0"]["experts"]["shape"] == [rows, 2] and first["routing"]["1"]["margins"]["shape"] == [rows]
    assert first["next_tokens"]["ids"]["shape"] == [rows, TOP_K]
    logprobs = np.frombuffer(base64.b64decode(first["next_tokens"]["logprobs"]["base64"]), dtype=np.float32).reshape(rows, TOP_K)
    rest = np.frombuffer(base64.b64decode(first["next_tokens"]["rest"]["base64"]), dtype=np.float32)
    assert np.allclose(np.exp(logprobs).sum(axis=1) + rest, 1.0, atol=1e-4)  # the top-k and the rest hold all the mass
    assert (np.diff(logprobs, axis=1) <= 0).all()  # most likely first


def test_the_same_model_verifies_under_another_thread_count(recorded: Path, runtime_moe_model: Path) -> None:
    """Recorded with 1 thread, verified with 2: identical, or different only at numerical ties."""
    _, status, summary, evidence = traced(runtime_moe_model, threads=2, verify=recorded)
    assert status == Status.MET, summary
    assert evidence["token_rows_compared"] > 0 and set(evidence["agreement_per_layer"].values()) == {1.0}
    assert evidence["recorded_with"]["threads"] == 1


def tamper(recorded: Path, target: Path, prompt: int, layer: str, position: int) -> tuple[list[int], list[int]]:
    """The trace with one expert id changed: the row's first expert replaced by one it did not select."""
    document = json.loads(recorded.read_text())
    entry = document["prompts"][prompt]["routing"][layer]["experts"]
    experts = np.frombuffer(base64.b64decode(entry["base64"]), dtype=entry["dtype"]).reshape(entry["shape"]).copy()
    before = sorted(int(e) for e in experts[position])
    experts[position][0] = next(e for e in range(4) if e not in before)
    entry["base64"] = base64.b64encode(experts.tobytes()).decode()
    target.write_text(json.dumps(document))
    return before, sorted(int(e) for e in experts[position])


def test_a_tampered_trace_is_not_met_naming_the_place(recorded: Path, runtime_moe_model: Path, tmp_path: Path) -> None:
    before, after = tamper(recorded, tmp_path / "tampered.json", prompt=2, layer="1", position=5)
    _, status, summary, evidence = traced(runtime_moe_model, verify=tmp_path / "tampered.json")
    assert status == Status.NOT_MET
    assert f"prompt 2, layer 1, token position 5: experts {after} vs {before} (router margin" in summary
    assert evidence["divergences"][0]["tolerated"] is False


def test_a_trace_of_another_file_is_refused(recorded: Path, deepseek4_model: Path) -> None:
    _, status, summary, _ = traced(deepseek4_model, verify=recorded)
    assert status == Status.NOT_EVALUATED and "was recorded for tiny-moe-4k.gguf (SHA-256" in summary and "this file's is" in summary


def test_a_malformed_trace_is_refused_with_where(recorded: Path, runtime_moe_model: Path, tmp_path: Path) -> None:
    document = json.loads(recorded.read_text())
    document["prompts"][1]["next_tokens"]["ids"]["dtype"] = "object"
    (tmp_path / "bad.json").write_text(json.dumps(document))
    _, status, summary, _ = traced(runtime_moe_model, verify=tmp_path / "bad.json")
    assert status == Status.NOT_EVALUATED and "is not a dfqs trace: prompts/1/next_tokens/ids/dtype" in summary


def test_without_a_trace_option_the_check_says_how_to_ask(runtime_moe_model: Path, dense_model: Path) -> None:
    assert traced(runtime_moe_model)[1] == Status.NOT_APPLICABLE
    assert "not a Mixture-of-Experts" in traced(dense_model, record=Path("unused.json"))[2]


def test_the_deepseek4_trace_records_and_verifies(deepseek4_model: Path, tmp_path: Path) -> None:
    path = tmp_path / "deepseek4.trace.json"
    _, status, _, evidence = traced(deepseek4_model, record=path, verify=path)
    assert status == Status.MET and evidence["recorded"]["layers"] == 4


def test_the_options_record_and_verify_through_the_plugin(
    certify: Certification, runtime_moe_model: Path, pytester: pytest.Pytester
) -> None:
    trace = pytester.path / "golden.json"
    first = certify.run(f"--dfqs-model={runtime_moe_model}", "--dfqs-tier=runtime", f"--dfqs-trace-record={trace}", "-k", "DFQS-3.3")
    assert first.ret == 0 and trace.is_file()
    second = certify.run(f"--dfqs-model={runtime_moe_model}", "--dfqs-tier=runtime", f"--dfqs-trace={trace}", "-k", "DFQS-3.3")
    assert second.ret == 0
    finding = next(f for f in certify.clause("DFQS-3.3")["findings"] if f["check"] == "routing-trace")
    assert finding["status"] == "MET" and certify.clause("DFQS-3.3")["status"] == "MET"
