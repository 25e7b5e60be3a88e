"""The prompt modes on the two real models: few-shot keeps the answers in the asked format, chat uses the model's own template.

Measured at the quick budget (40 reasoning items, 10 HumanEval problems), greedy. SmolLM2-135M-Instruct has a
chat template; Gemma 3 270M's GGUF has none, so chat mode falls back to few-shot for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_dfqs.evaluation.budget import BUDGETS, CHAT, FEW_SHOT
from pytest_dfqs.evaluation.code import measure_code
from pytest_dfqs.evaluation.prompt_mode import resolve_mode
from pytest_dfqs.evaluation.reasoning import CHANCE, measure_reasoning
from pytest_dfqs.runtime.client import ModelRuntime
from tests.conftest import running

pytestmark = pytest.mark.timeout(900)
QUICK = BUDGETS["quick"]


@pytest.fixture(scope="module")
def gemma3_runtime(gemma3: Path) -> Iterator[ModelRuntime]:
    yield from running(gemma3, 4096)


def test_a_completion_says_how_it_ended(smollm2_runtime: ModelRuntime) -> None:
    """The token budget, a stop string (cut before it), an end pattern (kept up to it) or the model's end of generation."""
    prompt = "Question: What is 2 + 3?\nWorking: 2 + 3 = 5.\nAnswer: 5\n\nQuestion: What is 4 + 4?\nWorking:"
    cut = smollm2_runtime.complete(prompt, 3, [])
    assert (cut.ended, cut.tokens) == ("budget", 3)
    ended = smollm2_runtime.complete(prompt, 48, [], r"(?m)^Answer:[^\n]*\w[^\n]*\n")
    assert ended.ended == "end" and ended.text.endswith("\n") and "Answer:" in ended.text
    stopped = smollm2_runtime.complete(prompt, 48, ["Answer"])
    assert stopped.ended == "stop" and "Answer" not in stopped.text and stopped.text.startswith(cut.text)
    chat = smollm2_runtime.complete(smollm2_runtime.render_chat([{"role": "user", "content": "Say hi."}])["text"], 64, [])
    assert chat.ended == "eog" and chat.tokens < 64  # <|im_end|>: SmolLM2 ends its turn


def _reasoning_in_the_asked_format(result: dict[str, object]) -> None:
    """Fewer than 1 in 10 replies without an `Answer:` line, every kind beside its chance level, true/false near chance or above."""
    assert result["items"] == 40 and result["format_failure_rate"] < 0.1, result["format_failure_reasons"]
    kinds = result["per_kind"]
    assert isinstance(kinds, dict) and {kind: figures["chance"] for kind, figures in kinds.items()} == CHANCE
    assert kinds["boolean"]["wilson_95"][1] >= CHANCE["boolean"]  # the interval reaches chance: not below it


def test_gemma3_few_shot_answers_in_the_asked_format(gemma3_runtime: ModelRuntime) -> None:
    result = measure_reasoning(gemma3_runtime, QUICK, FEW_SHOT)
    _reasoning_in_the_asked_format(result)
    assert result["mode"] == FEW_SHOT and result["budget_hits"] == 0


def test_gemma3_has_no_chat_template_so_chat_mode_falls_back_to_few_shot(gemma3_runtime: ModelRuntime) -> None:
    mode, why, rendering = resolve_mode(gemma3_runtime, CHAT)
    assert (
        mode == FEW_SHOT
        and rendering is None
        and why == "chat mode asked for, but the model has no chat template (tokenizer.chat_template): few-shot instead"
    )


def test_smollm2_in_its_chat_template_every_reply_is_accounted_for(smollm2_runtime: ModelRuntime, smollm2: Path) -> None:
    """SmolLM2-135M rarely writes the `Answer:` line in chat: each such reply is a counted format failure with its reason,
    the replies cut by the budget are counted, and its HumanEval replies hold code blocks that the sandbox runs."""
    assert resolve_mode(smollm2_runtime, CHAT) == (CHAT, None, "llama.cpp's built-in chatml form of the model's chat template")
    assert resolve_mode(smollm2_runtime, CHAT, dangerous=True)[:2] == (
        FEW_SHOT,
        "chat mode asked for, but the chat template is dangerous (see the safety group): few-shot instead",
    )
    reasoning = measure_reasoning(smollm2_runtime, QUICK, CHAT)
    failures = [o for o in reasoning["outcomes"] if o["format"] != "answer line"]
    assert reasoning["format_failures"] == len(failures) == sum(reasoning["format_failure_reasons"].values())
    assert reasoning["budget_hits"] == sum(o["ended"] == "budget" for o in reasoning["outcomes"])
    assert all(o["correct"] is False for o in reasoning["outcomes"] if o["extracted"] is None)
    reused = [o["reused_tokens"] for o in reasoning["outcomes"]]  # the system turn, computed once and kept
    assert reused[0] == 0 and min(reused[1:]) >= 16 and len(set(reused[1:])) == 1, reused
    code = measure_code(smollm2_runtime, QUICK, smollm2, CHAT)
    assert code["mode"] == CHAT and code["problems"] == 10
    blocks = [o for o in code["outcomes"] if o["format"] == "code block"]
    assert len(blocks) >= 8 and all(o["status"] in ("passed", "failed", "timeout", "killed") for o in blocks)
