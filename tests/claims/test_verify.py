"""Each kind of claim, caught when false and accepted when true, on generated GGUF files."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from gguf.constants import GGMLQuantizationType as T
from gguf.constants import GGUFValueType as V
from gguf.constants import LlamaFileType

from pytest_dfqs.claims.claims_file import Claim
from pytest_dfqs.claims.verify import verify_claim
from pytest_dfqs.model import ModelUnderTest
from pytest_dfqs.runtime.host import cpu_model, physical_memory
from pytest_dfqs.verdict import NEEDS_TIER, Status
from tests.gguf_bytes import RawGGUF, RawTensor

VOCAB, EMBD, FF, EXPERTS, USED, LAYERS = 1000, 64, 32, 8, 2, 2


def moe_file(path: Path, file_type: int = LlamaFileType.MOSTLY_Q8_0) -> Path:
    """A MoE header with known counts: 64,000-element embedding and output head, 8 experts, 2 used, 2 layers."""
    tensors = [RawTensor("token_embd.weight", (EMBD, VOCAB), T.F16)]
    for layer in range(LAYERS):
        tensors += [
            RawTensor(f"blk.{layer}.attn_norm.weight", (EMBD,), T.F32),
            RawTensor(f"blk.{layer}.attn_q.weight", (EMBD, EMBD), T.Q8_0),
            RawTensor(f"blk.{layer}.ffn_gate_inp.weight", (EMBD, EXPERTS), T.F32),
            RawTensor(f"blk.{layer}.ffn_gate_exps.weight", (EMBD, FF, EXPERTS), T.Q8_0),
            RawTensor(f"blk.{layer}.ffn_up_exps.weight", (EMBD, FF, EXPERTS), T.Q8_0),
            RawTensor(f"blk.{layer}.ffn_down_exps.weight", (FF, EMBD, EXPERTS), T.Q8_0),
        ]
    tensors.append(RawTensor("output.weight", (EMBD, VOCAB), T.Q8_0))
    kv: list[tuple[str, V, object]] = [
        ("general.architecture", V.STRING, "llama"),
        ("general.file_type", V.UINT32, file_type),
        ("llama.block_count", V.UINT32, LAYERS),
        ("llama.context_length", V.UINT32, 32768),
        ("llama.expert_count", V.UINT32, EXPERTS),
        ("llama.expert_used_count", V.UINT32, USED),
    ]
    return RawGGUF(kv=kv, tensors=tensors).write(path)


ROUTED = 3 * EMBD * FF * EXPERTS * LAYERS  # 98,304
NON_ROUTED = 2 * EMBD * VOCAB + LAYERS * (EMBD + EMBD * EMBD + EMBD * EXPERTS)  # 128,000 + 9,344
TOTAL = NON_ROUTED + ROUTED
ACTIVE = NON_ROUTED + ROUTED * USED // EXPERTS


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> ModelUnderTest:
    return ModelUnderTest(moe_file(tmp_path_factory.mktemp("claims") / "moe.gguf"), "moe.gguf")


def check(model: ModelUnderTest, fact: str, value: Any, record: dict[str, Any] | None = None, **extra: Any) -> tuple[Status, str, dict]:
    finding = verify_claim(Claim("c", fact, value, **extra), model, record)
    return finding.status, finding.summary, finding.evidence


def test_a_parameter_count_matches_under_the_convention_that_counts_it(model: ModelUnderTest) -> None:
    every = check(model, "total_parameters", str(TOTAL))
    assert every[0] == Status.MET and every[2]["convention"] == "every tensor"
    without_embedding = check(model, "total_parameters", str(TOTAL - EMBD * VOCAB))
    assert without_embedding[0] == Status.MET and without_embedding[2]["convention"] == "without the input embedding"
    active = check(model, "active_parameters", str(ACTIVE - 2 * EMBD * VOCAB))
    assert active[0] == Status.MET and active[2]["convention"] == "without the input embedding and the output head"
    assert "counted without the input embedding and the output head" in active[1]


def test_a_parameter_count_no_convention_gives_is_not_met_listing_each(model: ModelUnderTest) -> None:
    status, summary, evidence = check(model, "active_parameters", "13B")
    assert status == Status.NOT_MET and "convention" not in evidence
    assert set(evidence["counts"]) == {
        "every tensor",
        "without the input embedding",
        "without the output head",
        "without the input embedding and the output head",
    }
    assert evidence["counts"]["every tensor"] == ACTIVE and "no counting convention gives 12.50B-13.50B" in summary


@pytest.mark.parametrize(
    ("fact", "true", "false"),
    [
        ("expert_count", 8, 256),
        ("expert_used_count", 2, 6),
        ("block_count", 2, 43),
        ("context_length", "32,768", "1,048,576"),
        ("tensor_count", 2 + 6 * LAYERS, 10),
        ("split_count", 1, 2),
        ("architecture", "LLaMA", "deepseek4"),
        ("mixture_of_experts", True, False),
        ("quantization", "Q8_0", "IQ1_S"),
        ("dtypes", {"f16": 1, "f32": 4, "q8_0": 9}, {"f16": 1, "f32": 4, "q8_0": 8}),
    ],
)
def test_header_facts_are_met_when_true_and_not_met_when_false(model: ModelUnderTest, fact: str, true: Any, false: Any) -> None:
    assert check(model, fact, true)[0] == Status.MET, check(model, fact, true)[1]
    assert check(model, fact, false)[0] == Status.NOT_MET


def test_context_length_32k_is_read_with_its_written_precision(model: ModelUnderTest) -> None:
    """'32K' admits 31,500 to 32,500: 32,768 is not 32K as written; a tolerance says what the card meant."""
    assert check(model, "context_length", "32K")[0] == Status.NOT_MET
    assert check(model, "context_length", "32K", tolerance="1K")[0] == Status.MET


def test_missing_metadata_is_named(model: ModelUnderTest) -> None:
    status, summary, _ = check(model, "expert_shared_count", 1)
    assert status == Status.NOT_MET and summary.startswith("expert shared count 0")


def test_a_wrong_dtype_table_names_each_difference(model: ModelUnderTest) -> None:
    status, summary, evidence = check(model, "dtypes", {"f16": 1, "f32": 4, "iq1_m": 9})
    assert status == Status.NOT_MET
    assert evidence["differing"] == {"iq1_m": {"claimed": 9, "found": 0}, "q8_0": {"claimed": 0, "found": 9}}
    assert "iq1_m 0 (claimed 9)" in summary and "q8_0 9 (claimed 0)" in summary


def test_the_file_size_is_met_within_its_written_precision(model: ModelUnderTest) -> None:
    size = model.path.stat().st_size
    written = f"{size / 1000:.1f} kB"
    assert check(model, "file_size", written)[0] == Status.MET
    assert check(model, "file_size", f"{size / 1000 + 0.2:.1f} kB")[0] == Status.NOT_MET
    assert check(model, "file_size", f"< {size + 1} B")[0] == Status.MET
    assert check(model, "file_size", f"< {size} B")[0] == Status.NOT_MET


def test_host_memory_is_this_machines(model: ModelUnderTest) -> None:
    memory = physical_memory()
    assert check(model, "host_memory", f">= {memory} B")[0] == Status.MET
    assert check(model, "host_memory", f">= {memory + 1} B")[0] == Status.NOT_MET


def test_a_digest_claim_is_met_only_by_the_files_digest(model: ModelUnderTest) -> None:
    digest = hashlib.sha256(model.path.read_bytes()).hexdigest()
    assert check(model, "sha256", digest.upper())[0] == Status.MET
    assert check(model, "sha256", "0" * 64)[0] == Status.NOT_MET


def test_a_digest_in_a_checksums_file_beside_the_model(tmp_path: Path) -> None:
    model = ModelUnderTest(moe_file(tmp_path / "moe.gguf"), "moe.gguf")
    absent = check(model, "sha256", None, checksums="checksums.txt")
    assert absent[0] == Status.NOT_EVALUATED and "checksums.txt" in absent[1]
    digest = hashlib.sha256(model.path.read_bytes()).hexdigest()
    (tmp_path / "checksums.txt").write_text(f"{digest}  moe.gguf\n{'1' * 64}  other.gguf\n")
    met = check(model, "sha256", None, checksums="checksums.txt")
    assert met[0] == Status.MET and met[2]["expected_from"] == str(tmp_path / "checksums.txt")
    (tmp_path / "checksums.txt").write_text(f"{'2' * 64}  moe.gguf\n")
    assert check(model, "sha256", None, checksums="checksums.txt")[0] == Status.NOT_MET
    (tmp_path / "checksums.txt").write_text(f"{'2' * 64}  other.gguf\n")
    assert "lists no digest for moe.gguf" in check(model, "sha256", None, checksums="checksums.txt")[1]


def record(code: tuple[int, int] = (1, 10), reasoning: tuple[int, int, float, float] = (6, 10, 0.31, 0.83)) -> dict[str, Any]:
    """The parts of a metrics record that score and throughput claims read."""
    passed, problems = code
    correct, items, low, high = reasoning
    return {
        "code_score": passed / problems,
        "reasoning_score": correct / items,
        "cpu_tokens_per_sec": 40.0,
        "details": {
            "code": {"passed": passed, "problems": problems},
            "reasoning": {"items": items, "correct": correct, "wilson_95": [low, high]},
            "throughput": {"per_round_decode_tokens_per_sec": [38.0, 40.0, 43.0]},
        },
    }


def test_a_score_claim_is_met_when_its_interval_meets_the_measured_interval(model: ModelUnderTest) -> None:
    """1 of 10 passed: the 95% Wilson interval is 0.018 to 0.404; 68% lies outside it, 30% inside."""
    status, summary, evidence = check(model, "code_score", "68%", record())
    assert status == Status.NOT_MET and evidence["interval"] == pytest.approx([0.0179, 0.4042], abs=1e-3)
    assert "10 items at this budget" in summary
    assert check(model, "code_score", "30%", record())[0] == Status.MET
    assert check(model, "reasoning_score", "0.8", record())[0] == Status.MET
    assert check(model, "reasoning_score", "0.9", record())[0] == Status.NOT_MET


def test_score_claims_need_the_eval_tier(model: ModelUnderTest) -> None:
    status, summary, evidence = check(model, "code_score", "68%")
    assert status == Status.NOT_EVALUATED and evidence[NEEDS_TIER] == "eval" and "--dfqs-tier eval" in summary


def test_a_throughput_claimed_on_other_hardware_is_not_comparable_here(model: ModelUnderTest) -> None:
    status, summary, evidence = check(model, "cpu_tokens_per_sec", "0.2-0.5", record(), hardware="CPU only (128GB DDR5)")
    assert status == Status.NOT_APPLICABLE and "not comparable here" in summary
    assert evidence["this_machine"] == cpu_model()


def test_a_throughput_claimed_on_this_cpu_is_compared_with_the_measured_rounds(model: ModelUnderTest) -> None:
    here = f"{cpu_model()}, 2 threads"
    assert check(model, "cpu_tokens_per_sec", "35-39", record(), hardware=here)[0] == Status.MET
    assert check(model, "cpu_tokens_per_sec", "0.2-0.5", record(), hardware=here)[0] == Status.NOT_MET
