"""An interrupted evaluation resumed from its journal equals an uninterrupted one, with fewer model calls."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_dfqs.evaluation.journal import Journal
from pytest_dfqs.evaluation.record import record_problems
from tests.conftest import Certification, SharedRun
from tests.interruptible import start_interruptible
from tests.machine_speed import scaled

pytestmark = pytest.mark.timeout(900)
JOURNALED_BEFORE_STOP = 20  # items in the journal when the first run is interrupted


def command(model: Path, folder: Path, threads: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        f"--dfqs-model={model}",
        "--dfqs-tier=eval",
        "--dfqs-eval-budget=quick",
        f"--dfqs-threads={threads}",
        f"--dfqs-metrics={folder / 'metrics.json'}",
        f"--dfqs-report={folder / 'certificate.json'}",
        "-p",
        "no:randomly",
        *extra,
    ]


def journal_lines(folder: Path) -> int:
    """Lines of the eval journal; the runtime checks' journal (`checks-*.jsonl`) beside it never reaches the count awaited."""
    journals = [path for path in (folder / ".pytest_cache" / "d" / "dfqs-journal").glob("*.jsonl") if not path.name.startswith("checks-")]
    return len(journals[0].read_text().splitlines()) if journals else 0


def results(step: dict[str, Any]) -> dict[str, Any]:
    """A step's details without its account of work: a resumed run reuses fewer cached exemplars (the first item of
    each kind after the resume decodes them), its replies are the same."""
    kept = {key: value for key, value in step.items() if key not in ("prompt_tokens_computed", "prompt_tokens_reused")}
    return kept | {"outcomes": [{k: v for k, v in outcome.items() if k != "reused_tokens"} for outcome in step["outcomes"]]}


def measured(metrics: Path, certificate_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The metrics record without what timing changes, and the certificate's runtime account."""
    record = json.loads(metrics.read_text())
    certificate = json.loads(certificate_path.read_text())
    details = record["details"]
    comparable = {
        "reasoning": results(details["reasoning"]),
        "code": results(details["code"]),
        "context_stability": {key: value for key, value in details["context_stability"].items() if key != "prompt_tokens_computed"},
        "curve": record["context_stability_curve"],
        "scores": [record["reasoning_score"], record["code_score"], record["failure_boundary_tokens"]],
        "conditions": record["conditions"],
    }
    assert certificate["models"][0]["journal"]["eval"] == details["journal"]  # the certificate says what was resumed too
    return comparable, {"runtime": certificate["models"][0]["runtime"], "journal": details["journal"]}


def test_a_resumed_evaluation_equals_an_uninterrupted_one(runtime_moe_model: Path, tiny_moe_quick_eval: SharedRun, tmp_path: Path) -> None:
    """Against the tiny MoE's quick evaluation of the session, uninterrupted, at its threads (tests/conftest.py)."""
    whole, stopped = tiny_moe_quick_eval, tmp_path / "stopped"
    stopped.mkdir()
    first = start_interruptible(
        command(runtime_moe_model, stopped, whole.threads), cwd=stopped, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    while journal_lines(stopped) < 1 + JOURNALED_BEFORE_STOP and first.poll() is None:
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGINT)
    assert first.wait(timeout=scaled(60)) == pytest.ExitCode.INTERRUPTED
    partial = json.loads((stopped / "metrics.json").read_text())  # the interrupted run's record: what it measured, no metrics
    assert (
        partial["interrupted"]
        and partial["reasoning_score"] is None
        and len(partial["details"]["measured"]["reasoning"]) >= JOURNALED_BEFORE_STOP
    )
    assert record_problems(partial) == ["the evaluation was interrupted: the record holds the items measured so far, not the five metrics"]
    resumed = subprocess.run(
        command(runtime_moe_model, stopped, whole.threads, "--dfqs-resume"),
        cwd=stopped,
        capture_output=True,
        text=True,
        timeout=scaled(600),
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert "resuming" in resumed.stdout
    expected, uninterrupted = measured(whole.folder / "metrics.json", whole.report)
    actual, after_resume = measured(stopped / "metrics.json", stopped / "certificate.json")
    assert actual == expected  # greedy decoding is deterministic: the same answers, probes and scores
    reused = sum(after_resume["journal"]["reused_items"].values())
    requests = (after_resume["runtime"]["requests"], uninterrupted["runtime"]["requests"])
    print(f"resumed {reused} items; model requests: {requests[0]} resumed, {requests[1]} uninterrupted")
    assert after_resume["journal"]["resumed"] and reused >= JOURNALED_BEFORE_STOP
    assert requests[0] < requests[1]


def test_a_journal_of_other_conditions_is_refused(certify: Certification, tiny_moe_quick_eval: SharedRun, runtime_moe_model: Path) -> None:
    """The tiny MoE's quick evaluation of the session left its journals (the eval's and the runtime checks'); a resumed
    run on another thread count really changes a condition: both are refused before anything is measured."""
    made, other = tiny_moe_quick_eval.threads, 3 - tiny_moe_quick_eval.threads  # 1 or 2, whichever it was not made with
    journals = certify.pytester.path / ".pytest_cache" / "d" / "dfqs-journal"
    shutil.copytree(tiny_moe_quick_eval.folder / ".pytest_cache" / "d" / "dfqs-journal", journals)
    assert len(list(journals.glob("checks-*.jsonl"))) == 1 and len(list(journals.glob("*.jsonl"))) == 2
    other_run = certify.run(
        f"--dfqs-model={runtime_moe_model}", "--dfqs-tier=eval", "--dfqs-eval-budget=quick", f"--dfqs-threads={other}", "--dfqs-resume"
    )
    record = {f["check"]: f for f in certify.clause("DFQS-11.1")["findings"]}["metrics-record"]
    assert record["status"] == "NOT EVALUATED"
    assert f"was made under other conditions: threads was {made}, is now {other}; its items are not comparable" in record["summary"]
    cpu = {f["check"]: f for f in certify.clause("DFQS-3.2")["findings"]}["cpu-generation"]  # the runtime checks' journal too
    assert cpu["status"] == "NOT EVALUATED" and "checks-" in cpu["summary"] and f"threads was {made}, is now {other}" in cpu["summary"]
    assert other_run.ret == 0  # INCOMPLETE: nothing about the model was decided


def test_long_measurements_report_progress(tmp_path: Path) -> None:
    """A clock that moves 2 s per item: a progress line at most every 5 s, saying what was measured and reused."""
    ticks = iter(range(0, 1000, 2))
    lines: list[str] = []
    journal = Journal(tmp_path / "j.jsonl", {"budget": "quick"}, announce=lines.append, clock=lambda: float(next(ticks)))
    for index in range(6):
        journal.item("reasoning", f"arith-{index:03d}", lambda: {"correct": True})
    assert lines == ["reasoning: 3 items measured, the last arith-002", "reasoning: 6 items measured, the last arith-005"]
