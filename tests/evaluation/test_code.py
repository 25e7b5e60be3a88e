"""HumanEval in both prompt modes: the completion prompt, and the instruct form with the code taken from a chat reply."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_dfqs.evaluation.code import Problem, extract_code, instruction, load_problems, score_completion

REPLIES = Path(__file__).parent / "data" / "smollm2-chat-humaneval-replies.json"


@pytest.fixture(scope="module")
def problems() -> dict[str, Problem]:
    return {problem.task_id: problem for problem in load_problems()[0]}


def test_the_instruct_form_puts_signature_and_docstring_in_the_user_turn(problems: dict[str, Problem]) -> None:
    problem = problems["HumanEval/0"]
    (turn,) = instruction(problem)
    assert turn["role"] == "user" and "```python code block" in turn["content"]
    assert turn["content"].endswith(f"```python\n{problem.prompt.rstrip()}\n```")


def test_code_is_extracted_from_real_chat_replies(problems: dict[str, Problem]) -> None:
    """SmolLM2-135M's replies in chat mode, word for word: each code block is found and makes a program Python accepts."""
    recorded = json.loads(REPLIES.read_text())["replies"]
    assert len(recorded) == 10
    for reply in recorded:
        problem = problems[reply["task_id"]]
        completion, found = extract_code(problem, reply["reply"])
        assert found == "code block", reply["task_id"]
        assert completion is not None and f"def {problem.entry_point}(" in completion
        compile(problem.program(completion), reply["task_id"], "exec")  # compiled, never run here: the sandbox runs it


@pytest.mark.parametrize(
    ("reply", "found"),
    [
        ("Sure!\n```python\n{solution}\n```\nThis works because...", "code block"),
        ("```py\n    {solution_indented}\n```", "code block"),  # an indented block is dedented
        ("```python\nimport math\n```\nand then\n```python\n{solution}\n```", "code block"),  # the block that defines it
        ("```python\n{body}\n```", "code block (body)"),  # only the body: it completes the prompt
        ("```python\n{solution}", "code block"),  # cut by the budget before the closing fence
        ("Here it is: {solution}", "no code block (bare def)"),
        ("I cannot write code.", "no code"),
    ],
)
def test_the_extraction_rule(problems: dict[str, Problem], reply: str, found: str) -> None:
    """Each way a reply can hold the function; every extracted program passes HumanEval's own tests in the sandbox."""
    problem = problems["HumanEval/2"]  # truncate_number: return number % 1.0
    body = "    return number % 1.0"
    solution = f"def {problem.entry_point}(number: float) -> float:\n{body}"
    text = reply.format(solution=solution, solution_indented=solution.replace("\n", "\n    "), body=body)
    completion, how = extract_code(problem, text)
    assert how == found
    if found == "no code":
        assert completion is None
    else:
        assert completion is not None and score_completion(problem, completion, REPLIES).status == "passed"


def test_a_wrong_function_in_a_code_block_fails_its_tests(problems: dict[str, Problem]) -> None:
    problem = problems["HumanEval/2"]
    completion, _ = extract_code(problem, "```python\ndef truncate_number(number: float) -> float:\n    return int(number)\n```")
    assert completion is not None and score_completion(problem, completion, REPLIES).status == "failed"
