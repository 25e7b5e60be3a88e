"""`pytest --dfqs-tier eval` end to end on SmolLM2 and the tiny MoE: the five metrics, the record, comparability."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_dfqs.clauses.evaluation_interface import check_identical_conditions
from pytest_dfqs.evaluation.record import REQUIRED, record_problems
from pytest_dfqs.model import EvalOptions, ModelUnderTest
from pytest_dfqs.modelfile.units import human_count
from pytest_dfqs.verdict import Status
from tests.conftest import Certification, SharedRun
from tests.page_samples import assert_printed, page_block

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def smollm2_record(smollm2_quick_eval: SharedRun) -> tuple[Path, str]:
    """SmolLM2's quick evaluation of the session (tests/conftest.py), shared by the tests that read or compare with it."""
    assert smollm2_quick_eval.result.ret == 0, smollm2_quick_eval.result.stdout.str()[-3000:]
    return smollm2_quick_eval.folder / "smollm2.json", smollm2_quick_eval.result.stdout.str()


def test_the_plan_counts_the_prompt_tokens_the_evaluation_computes(smollm2_record: tuple[Path, str]) -> None:
    """The header's plan, in SmolLM2's own tokens (its vocabulary read before the load) with the exemplars kept per
    kind, against what the evaluation reports it computed and reused."""
    path, output = smollm2_record
    details = json.loads(path.read_text())["details"]
    plan = next(line for line in output.splitlines() if line.startswith("dfqs plan for"))
    reasoning, code = details["reasoning"], details["code"]
    assert "(in the model's own tokens)" in plan
    assert f"reasoning_score (40 items) ~{human_count(reasoning['prompt_tokens_computed'])}" in plan
    assert f"(+{human_count(reasoning['prompt_tokens_reused'])} reused)" in plan
    assert f"code_score (10 problems) ~{human_count(code['prompt_tokens_computed'])} + " in plan
    assert f"context_stability_curve (3 lengths) ~{human_count(details['context_stability']['prompt_tokens_computed'])} + 0" in plan
    assert "routing-determinism" not in plan  # SmolLM2 is dense: DFQS-3.3 does not apply


def test_smollm2_quick_evaluation_reports_the_five_metrics(smollm2_record: tuple[Path, str]) -> None:
    path, output = smollm2_record
    record = json.loads(path.read_text())
    assert record_problems(record) == []
    assert set(REQUIRED) <= set(record)
    assert isinstance(record["failure_boundary_tokens"], int) and record["context_stability_curve"][0] == 1.0
    assert record["cpu_tokens_per_sec"] > 10
    assert record["details"]["reasoning"]["items"] == 40 and record["details"]["code"]["problems"] == 10
    assert record["details"]["context_stability"]["lengths"] == [512, 1024, 2048]
    stability = record["details"]["context_stability"]
    assert stability["recall"][0] >= 0.5 and stability["retrieved"][0] > 0  # SmolLM2 finds planted codes at 512 among others
    assert record["conditions"]["prompt_sets"]["context"]["id"] == "dfqs-context-v2"
    assert record["details"]["throughput"]["measured_with"] == "pytest-benchmark"
    assert json.loads(path.with_name("benchmark.json").read_text())["benchmarks"]  # what --benchmark-json asked for
    assert record["conditions"]["budget"] == "quick" and record["conditions"]["sampling"]["decoding"] == "greedy"
    assert path.with_name("smollm2-stability.png").stat().st_size > 10_000
    assert "DFQS-11.1  SHALL   MET" in output and "verdict: CONFORMANT at tier eval" in output
    assert "; section 11's metrics are reported without thresholds (DFQS-11.1 sets none)" in output
    reasoning = record["details"]["reasoning"]
    assert record["conditions"]["prompt_mode"] == reasoning["mode"] == record["details"]["code"]["mode"] == "few-shot"  # the default
    assert record["conditions"]["prompt_sets"]["reasoning"]["max_tokens"] == {"arithmetic": 96, "boolean": 96, "dates": 96, "ordering": 64}
    assert record["conditions"]["prompt_sets"]["code"]["max_tokens"] == 256
    assert reasoning["format_failure_rate"] < 0.1 and reasoning["per_kind"]["boolean"]["wilson_95"][1] >= 0.5
    kinds = record["details"]["reasoning"]["per_kind"]
    assert list(kinds) == ["arithmetic", "boolean", "dates", "ordering"] and sum(k["items"] for k in kinds.values()) == 40
    assert "reasoning by kind     items   score    95% interval   chance" in output and "boolean" in output
    certificate = json.loads(path.with_name("certificate.json").read_text())
    statuses = {c["id"]: c["status"] for c in certificate["models"][0]["clauses"]}
    assert statuses["DFQS-11.1"] == statuses["DFQS-11.2"] == "MET"


def test_the_eval_pages_sample_is_what_smollm2s_quick_evaluation_prints(smollm2_record: tuple[Path, str]) -> None:
    """docs/eval-tier.md's worked example: the lines under the clause table, greedy, so the same on every run."""
    sample = page_block("docs/eval-tier.md", "The terminal's lines under the clause table for SmolLM2")
    output = smollm2_record[1]
    assert len(sample) == 6
    assert_printed(sample, output.splitlines())


def test_score_and_throughput_claims_read_the_eval_tiers_record(smollm2_record: tuple[Path, str]) -> None:
    """The card's 68% HumanEval against SmolLM2's quick-budget pass@1; a CPU throughput claimed elsewhere; one claimed here."""
    path, output = smollm2_record
    record = json.loads(path.read_text())
    claims = {c["id"]: c for c in json.loads(path.with_name("certificate.json").read_text())["models"][0]["claims"]}
    humaneval = claims["card-humaneval"]
    assert humaneval["status"] == "NOT MET" and humaneval["evidence"]["measured"] == record["code_score"]
    assert humaneval["evidence"]["interval"][1] < 0.675  # 10 problems: the 95% interval's top lies below the claim
    assert claims["card-cpu-throughput"]["status"] == "NOT APPLICABLE" and "not comparable here" in claims["card-cpu-throughput"]["summary"]
    here = claims["throughput-here"]
    assert here["status"] == "MET" and here["evidence"]["measured"] == record["cpu_tokens_per_sec"]
    reasoning = claims["reasoning-at-least-chance"]
    assert reasoning["status"] == ("MET" if reasoning["evidence"]["interval"][1] >= 0.5 else "NOT MET")
    assert "verdict: CONFORMANT at tier eval" in output  # claims are informational without --dfqs-strict


def test_identical_conditions_show_the_metrics_side_by_side(tiny_moe_quick_eval: SharedRun, smollm2_record: tuple[Path, str]) -> None:
    """The tiny MoE's quick evaluation of the session, made with SmolLM2's record as its baseline at its threads."""
    baseline, _ = smollm2_record
    result = tiny_moe_quick_eval.result
    assert tiny_moe_quick_eval.threads == recorded_threads(baseline)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        ["DFQS-11.2  SHALL   MET *", "metric * model * baseline * delta", "reasoning_score *", "cpu_tokens_per_sec *"]
    )


def recorded_threads(record: Path) -> int:
    """The threads a metrics record was made with: the tests' llama.cpp threads when it was made (1 or 2)."""
    return int(json.loads(record.read_text())["conditions"]["threads"])


def test_different_conditions_are_not_met(
    tiny_moe_quick_eval: SharedRun, runtime_moe_model: Path, smollm2_record: tuple[Path, str], tmp_path: Path
) -> None:
    """The tiny MoE's real record against SmolLM2's with its recorded threads changed on disk (the refusal depends on
    the conditions alone; a run that really changes the thread count is test_resume's journal of other conditions)."""
    baseline = json.loads(smollm2_record[0].read_text())
    baseline["conditions"]["threads"] = 3 - baseline["conditions"]["threads"]  # 1 or 2, whichever it was not made with
    other = tmp_path / "smollm2-other-threads.json"
    other.write_text(json.dumps(baseline))
    model = ModelUnderTest(runtime_moe_model, runtime_moe_model.name, eval_options=EvalOptions(budget="quick", baseline=other))
    model.metrics_record = json.loads((tiny_moe_quick_eval.folder / "metrics.json").read_text())
    found = check_identical_conditions(model)
    assert found.status == Status.NOT_MET
    assert found.summary == "conditions differ from the baseline's in 1 field(s): threads"
    assert found.evidence["differing"] == ["threads"]


FALLBACK = "chat mode asked for, but the model has no chat template (tokenizer.chat_template): few-shot instead"
V1_RECORD = Path(__file__).parent / "data" / "smollm2-quick-reasoning-v1.json"  # SmolLM2's quick record, made by pytest-dfqs d1d2cf8


def test_a_reasoning_v1_record_stays_readable_and_is_not_comparable(certify: Certification, runtime_moe_model: Path) -> None:
    """A record of the old prompt set (zero-shot, 16 tokens) validates, and DFQS-11.2 names the prompt sets that differ.
    Chat mode is asked for a model without a chat template: it is asked few-shot instead, said and recorded."""
    old = json.loads(V1_RECORD.read_text())
    assert record_problems(old) == [] and old["conditions"]["prompt_sets"]["reasoning"]["id"] == "dfqs-reasoning-v1"
    metrics = certify.pytester.path / "tiny.json"
    result = certify.run(
        f"--dfqs-model={runtime_moe_model}",
        "--dfqs-tier=eval",
        "--dfqs-eval-budget=quick",
        "--dfqs-prompt-mode=chat",
        f"--dfqs-metrics={metrics}",
        f"--dfqs-baseline={V1_RECORD}",
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            f"*tiny-moe-4k*: {FALLBACK}",
            "DFQS-11.2  SHALL   NOT MET         the reasoning prompt set is dfqs-reasoning-v2, the baseline's dfqs-reasoning-v1; *",
        ]
    )
    clauses = {c["id"]: c for c in certify.certificate()["models"][0]["clauses"]}
    assert {"prompt_mode", "prompt_sets.reasoning.id", "prompt_sets.reasoning.max_tokens.boolean"} <= set(
        clauses["DFQS-11.2"]["findings"][0]["evidence"]["differing"]
    )
    record = json.loads(metrics.read_text())
    assert record["conditions"]["prompt_mode"] == "few-shot"
    assert record["details"]["prompt_mode"] == {"asked": "chat", "used": "few-shot", "fallback": FALLBACK, "chat_rendering": None}


def test_bad_budget_and_baseline_are_usage_errors(pytester: pytest.Pytester, runtime_moe_model: Path) -> None:
    pytester.path.joinpath("not.json").write_text("{oops")
    budget = pytester.runpytest_inprocess(f"--dfqs-model={runtime_moe_model}", "--dfqs-eval-budget=huge")
    budget.stderr.fnmatch_lines(["ERROR: --dfqs-eval-budget: 'huge' is not one of quick, standard, full"])
    mode = pytester.runpytest_inprocess(f"--dfqs-model={runtime_moe_model}", "--dfqs-prompt-mode=zero-shot")
    mode.stderr.fnmatch_lines(["ERROR: --dfqs-prompt-mode: 'zero-shot' is not one of few-shot, chat"])
    baseline = pytester.runpytest_inprocess(f"--dfqs-model={runtime_moe_model}", "--dfqs-baseline=not.json")
    baseline.stderr.fnmatch_lines(["ERROR: --dfqs-baseline: not.json is not JSON*"])
