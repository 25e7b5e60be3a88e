"""`pytest --dfqs-tier runtime` end to end, on real llama.cpp: tiny MoE, deepseek4, SmolLM2, a crash, a preflight skip."""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_dfqs.modelfile.demo import TinyModelSpec, write_model
from pytest_dfqs.runtime.host import usable_cores
from tests.conftest import Certification, SharedRun, SharedRuns, TerminalRun, validate_certificate

pytestmark = pytest.mark.timeout(600)


MOE_MODELS = ["runtime_moe_model", "deepseek4_model"]


@pytest.fixture(scope="module")
def moe_runtime_tier(shared_runs: SharedRuns, runtime_moe_model: Path, deepseek4_model: Path) -> SharedRun:
    """The runtime tier of the tiny llama MoE and the tiny deepseek4, in one session: the run the tests below share."""
    return shared_runs.run(f"--dfqs-model={runtime_moe_model}", f"--dfqs-model={deepseek4_model}", "--dfqs-tier=runtime")


@pytest.mark.parametrize("model", MOE_MODELS)
def test_moe_models_meet_every_runtime_clause(moe_runtime_tier: SharedRun, request: pytest.FixtureRequest, model: str) -> None:
    path: Path = request.getfixturevalue(model)
    run, index = moe_runtime_tier, MOE_MODELS.index(model)
    result = run.result
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            f"dfqs plan for {path.name}: 1 load (CPU, {run.threads} thread*), then prompt + decode tokens (in the model's own tokens):"
            " cpu-generation ~* + 32; routing-determinism ~* + 336; about * prompt tokens computed and up to * decode tokens",
            f"dfqs: {path.name}: at * prompt and * decode tokens/s the planned work left takes about * s",
            "verdict: INCOMPLETE at tier runtime*",
            "undecided: DFQS-11.1, DFQS-11.2 (tier eval not run)",
        ]
    )
    assert result.stdout.str().count(f"dfqs: {path.name}: at ") == 1  # the estimate is said once per model
    validate_certificate(run.certificate())
    assert run.clause("DFQS-3.2", index)["status"] == "MET"
    assert run.clause("DFQS-3.3", index)["status"] == "MET"
    assert run.clause("DFQS-3.4", index)["status"] == "MET"
    assert run.clause("DFQS-3.6", index)["status"] == "NOT APPLICABLE"
    cpu = run.findings("DFQS-3.2", index)["cpu-generation"]["evidence"]
    assert cpu["backend"].startswith("CPU") and cpu["threads"] == run.threads and cpu["generated_tokens"] == 32
    assert cpu["decode_tokens_per_sec"] > 0 and cpu["prompt_tokens_per_sec"] > 0 and cpu["peak_rss_bytes"] > 0
    routing = run.findings("DFQS-3.3", index)["routing-determinism"]["evidence"]
    assert routing["token_rows_compared"] > 1000 and set(routing["expert_load"]) == set(routing["trace"])


def test_each_model_is_loaded_once_per_session(moe_runtime_tier: SharedRun) -> None:
    result = moe_runtime_tier.result
    assert result.ret == 0, result.stdout.str()
    for model in moe_runtime_tier.certificate()["models"]:
        assert model["runtime"]["workers_started"] == 1 and model["runtime"]["loads"] == 1, model["runtime"]


def test_dense_model_routing_is_not_applicable(certify: Certification, dense_model: Path) -> None:
    """Its 65,537-token fill left out: the demo's runtime tier of the session makes one (the next test)."""
    result = certify.run(f"--dfqs-model={dense_model}", "--dfqs-tier=runtime", "-k", "not decode-past-64k")
    assert result.ret == 0
    routing = certify.clause("DFQS-3.3")
    assert routing["status"] == "NOT APPLICABLE" and "not a Mixture-of-Experts model" in routing["reason"]


def test_a_model_of_a_long_context_decodes_past_64k(demo_runtime_tier: TerminalRun) -> None:
    """The demo (131,072 tokens declared) at the runtime tier, as the session ran it once (tests/conftest.py)."""
    assert demo_runtime_tier.status == 0, demo_runtime_tier.lines[-40:]
    fills = [
        line for line in demo_runtime_tier.lines if fnmatch.fnmatch(line, "dfqs: *.gguf: evaluate: * of 65,537 prompt tokens decoded*")
    ]
    assert fills  # the fill reports progress
    far = demo_runtime_tier.findings("DFQS-3.7")["decode-past-64k"]
    assert far["status"] == "MET" and far["evidence"]["last_position"] > 65_536
    assert demo_runtime_tier.clause("DFQS-3.7")["status"] == "MET"


def test_smollm2_runs_real_text(certify: Certification, smollm2: Path) -> None:
    result = certify.run(f"--dfqs-model={smollm2}", "--dfqs-tier=runtime")
    assert result.ret == 0, result.stdout.str()
    compatibility = certify.findings("DFQS-3.4")["llama-cpp-load"]
    assert compatibility["status"] == "MET" and compatibility["evidence"]["chat_template"] == "present"
    renderings = compatibility["evidence"]["chat_renderings"]
    assert "<|im_start|>user" in renderings["llama_cpp"] and renderings["llama_cpp"] == renderings["template"]
    assert all(r["roundtrip"] == r["text"] for r in compatibility["evidence"]["tokenizer_roundtrips"])
    assert certify.clause("DFQS-3.2")["status"] == "MET"
    assert certify.findings("DFQS-3.7")["decode-past-64k"]["status"] == "NOT APPLICABLE"


def test_a_llama_cpp_abort_is_isolated_and_the_models_fault(certify: Certification, tmp_path: Path) -> None:
    crashing = tmp_path / "aborts.gguf"
    write_model(crashing, TinyModelSpec(n_expert_used=5, context_length=4096))  # llama.cpp asserts used <= count
    result = certify.run(f"--dfqs-model={crashing}", "--dfqs-tier=runtime")
    assert result.ret == 1
    aborted = "llama.cpp aborted (SIGABRT) loading this model: llama-model.cpp:*: GGML_ASSERT(n_exp*"  # its dry run, no weight read
    result.stdout.fnmatch_lines([f"DFQS-3.1   SHALL   NOT MET         {aborted}", "verdict: NOT CONFORMANT at tier runtime*"])
    rules = certify.findings("DFQS-3.1")["loader-rules"]  # llama.cpp judged: its rules are not consulted
    assert (rules["status"], rules["evidence"]) == ("NOT APPLICABLE", {"llama_cpp_verdict": "NOT MET"})
    assert "errors" not in result.parseoutcomes()  # the model's fault is a failure, not an error of the suite
    result.stdout.fnmatch_lines(["FAILED *test_cpu_operation[[]DFQS-3.2-cpu-generation-aborts.gguf[]]*"])
    checks = (
        ("DFQS-3.1", "llama-cpp-loads"),
        ("DFQS-3.1", "llama-cpp-executes"),
        ("DFQS-3.2", "cpu-generation"),
        ("DFQS-3.4", "llama-cpp-load"),
    )
    for clause, check in checks:
        finding = certify.findings(clause)[check]
        assert finding["status"] == "NOT MET", clause
        assert "GGML_ASSERT(n_expert_used_max <= hparams.n_expert) failed" in finding["summary"].splitlines()[0]
    assert certify.certificate()["models"][0]["runtime"]["workers_started"] == 1


def test_a_file_llama_cpp_refuses_is_not_met_in_its_words(certify: Certification, tmp_path: Path) -> None:
    refused = tmp_path / "no-norm.gguf"
    write_model(refused, TinyModelSpec(context_length=4096), drop=("blk.0.ffn_norm",))
    result = certify.run(f"--dfqs-model={refused}", "--dfqs-tier=runtime")
    assert result.ret == 1 and "errors" not in result.parseoutcomes()
    for clause, check in (("DFQS-3.1", "llama-cpp-executes"), ("DFQS-3.2", "cpu-generation")):
        summary = certify.findings(clause)[check]["summary"]
        assert summary.startswith("llama.cpp refuses to load this model: check_tensor_dims: tensor 'blk.0.ffn_norm.weight' not found")
    assert "llama.cpp's log ends" in certify.findings("DFQS-3.1")["llama-cpp-executes"]["summary"]
    result.stdout.fnmatch_lines(  # the plan cannot be counted in the tokens of a model llama.cpp refuses: it says so
        ["dfqs plan for no-norm.gguf: * tokens (estimated at 4 characters a token: llama.cpp refuses to load this model: *): cpu-*"]
    )
    assert certify.certificate()["models"][0]["runtime"]["workers_started"] == 1


def test_at_the_static_tier_the_single_file_clause_awaits_llama_cpp(runtime_moe_static: SharedRun) -> None:
    result, certify = runtime_moe_static.result, runtime_moe_static
    result.stdout.fnmatch_lines(
        ["DFQS-3.1   SHALL   MET             llama.cpp accepts it, no weight read (6 checks); its full load at --dfqs-tier runtime"]
    )
    clause = certify.clause("DFQS-3.1")
    assert clause["status"] == "MET"
    assert {f["check"]: f["status"] for f in clause["findings"]}["llama-cpp-executes"] == "NOT EVALUATED"


def test_preflight_skips_a_context_that_cannot_fit(certify: Certification, runtime_moe_model: Path) -> None:
    result = certify.run(f"--dfqs-model={runtime_moe_model}", "--dfqs-tier=runtime", "--dfqs-ctx=400000000", "-rs")
    assert result.ret == 0  # the tests skip: INCOMPLETE, and a certification gate asks --dfqs-require-complete
    result.stdout.fnmatch_lines(
        [
            "verdict: INCOMPLETE at tier runtime*",
            "undecided: DFQS-3.1 (llama.cpp read the hyperparameters*); DFQS-3.2 (a context of 400,000,000 tokens needs about *);"
            " DFQS-3.3 (could not run: a context of 400,000,000 tokens needs about *); DFQS-11.1, DFQS-11.2 (tier eval not run)",
            "*NOT EVALUATED: a context of 400,000,000 tokens needs about * GiB, * GiB available (weights * + caches for 400,000,000"
            " tokens * projected from llama.cpp's dry runs at 512 and 4,096 tokens); lower --dfqs-ctx or free memory",
        ]
    )
    assert certify.clause("DFQS-3.2")["status"] == "NOT EVALUATED"
    read = certify.findings("DFQS-3.1")["llama-cpp-executes"]  # llama.cpp read hyperparameters and vocabulary all the same
    assert read["status"] == "NOT EVALUATED" and read["summary"].startswith(
        "llama.cpp read the hyperparameters and the 291-token vocabulary"
    )
    memory = read["evidence"]["memory_preflight"]  # the certificate states the need and what was available
    assert memory["needs_bytes"] > memory["available_bytes"] > 0 and memory["projected_from_ctx"] == [512, 4096]
    runtime = certify.certificate()["models"][0]["runtime"]
    assert (runtime["workers_started"], runtime["loads"]) == (1, 0)  # the vocab-only read and dry runs, no full load


def test_runtime_options_are_validated(pytester: pytest.Pytester, runtime_moe_model: Path) -> None:
    result = pytester.runpytest_inprocess(f"--dfqs-model={runtime_moe_model}", "--dfqs-threads=zero")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --dfqs-threads: 'zero' is not a whole number"])
    huge = pytester.runpytest_inprocess(f"--dfqs-model={runtime_moe_model}", "--dfqs-threads=99999999999")
    huge.stderr.fnmatch_lines(["ERROR: --dfqs-threads: 99999999999 is outside 1..*"])
    tiny = pytester.runpytest_inprocess(f"--dfqs-model={runtime_moe_model}", "--dfqs-ctx=1")
    tiny.stderr.fnmatch_lines(["ERROR: --dfqs-ctx: 1 is outside 256..2147483647"])


def test_resumed_runtime_checks_are_not_run_again(
    certify: Certification, moe_runtime_tier: SharedRun, runtime_moe_model: Path, deepseek4_model: Path
) -> None:
    """The decided findings of runtime checks are journaled: a resumed run on the same files and settings (the shared
    run's journals, in a folder of this test's) reuses them."""
    assert moe_runtime_tier.result.ret == 0
    before = moe_runtime_tier.certificate()["models"][0]
    journals = Path(".pytest_cache", "d", "dfqs-journal")
    shutil.copytree(moe_runtime_tier.folder / journals, certify.pytester.path / journals)
    models = (f"--dfqs-model={runtime_moe_model}", f"--dfqs-model={deepseek4_model}")
    again = certify.run(*models, "--dfqs-tier=runtime", f"--dfqs-threads={moe_runtime_tier.threads}", "--dfqs-resume")
    assert again.ret == 0
    after = certify.certificate()["models"][0]
    assert [(c["id"], c["status"], c["reason"]) for c in after["clauses"]] == [
        (c["id"], c["status"], c["reason"]) for c in before["clauses"]
    ]
    journal = after["journal"]["checks"]
    assert journal["resumed"] and journal["reused_items"]["check"] >= 5 and journal["measured_items"] == {}
    assert after["runtime"]["requests"] == 0 < before["runtime"]["requests"]  # llama.cpp was asked nothing this time


def test_threads_beyond_the_free_cores_are_warned_of(pytester: pytest.Pytester, runtime_moe_model: Path) -> None:
    """Busy loops on all cores but one: llama.cpp on every core would wait at each step for the threads that share a
    core with them; the header says so and names the thread count that does not."""
    cores = usable_cores()
    if cores < 2:
        pytest.skip("one core: one thread, which waits for no other")
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores - 1)]
    try:
        loaded = pytester.runpytest_subprocess(
            f"--dfqs-model={runtime_moe_model}", "--dfqs-tier=runtime", f"--dfqs-threads={cores}", "--collect-only"
        )
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    loaded.stdout.fnmatch_lines(
        [
            f"dfqs: WARNING: other work keeps * of {cores} cores busy now: llama.cpp's {cores} threads wait for each other after"
            " every step, so the run can take several times longer; --dfqs-threads=1 avoids that"
        ]
    )
    alone = pytester.runpytest_subprocess(f"--dfqs-model={runtime_moe_model}", "--dfqs-tier=runtime", "--dfqs-threads=1", "--collect-only")
    assert "WARNING: other work" not in alone.stdout.str()  # one thread waits for no other
