"""How the eval tier asks: few-shot completion or the model's own chat template.

- few-shot: worked exemplars of the same kind (shipped in the prompt set's
  file), then the question; HumanEval's standard completion prompt. Works on
  any model, base or instruct.
- chat: the model's `tokenizer.chat_template`, rendered by llama.cpp itself,
  around an instruction to end with `Answer: X` (reasoning) or to reply with
  the function in a code block (HumanEval, the instruct form).

few-shot is the default: it asks every model the same way, base or instruct,
so two quantizations of one model stay comparable even when a converter
dropped the chat template (Gemma 3 270M's GGUF here has none); its exemplars
show brief working, so a model that works before it answers has room to; and
on the two real models of the tests it keeps the answers in the asked format
(SmolLM2-135M and Gemma 3 270M at the quick budget: 1 and 0 of 40 replies
without an `Answer:` line), where SmolLM2 in its own chat template writes that
line in none of 40 replies.

Chat mode measures a chat model as it is deployed; a model without a template
llama.cpp can render falls back to few-shot, said in the terminal and
recorded. The mode in force is part of the recorded conditions, so records
made in different modes are not comparable (DFQS-11.2).
"""

from __future__ import annotations

from pytest_dfqs.runtime.client import ModelRuntime, RequestFailed, RuntimeNotEvaluated

from .budget import CHAT, FEW_SHOT

PROBE = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello."}]


def resolve_mode(runtime: ModelRuntime, requested: str) -> tuple[str, str | None]:
    """The mode in force, and why it is not the one asked for (None when it is)."""
    if requested == FEW_SHOT:
        return FEW_SHOT, None
    problem = _chat_problem(runtime)
    return (CHAT, None) if problem is None else (FEW_SHOT, f"chat mode asked for, but {problem}: few-shot instead")


def _chat_problem(runtime: ModelRuntime) -> str | None:
    if not runtime.loaded()["chat_template"]:
        return "the model has no chat template (tokenizer.chat_template)"
    try:
        runtime.render_chat(PROBE)
    except RequestFailed as failure:
        return f"llama.cpp cannot render the model's chat template ({failure.error})"
    return None


def chat_prompt(runtime: ModelRuntime, messages: list[dict[str, str]]) -> str:
    """The conversation in the model's template, ready for its reply."""
    rendered = runtime.render_chat(messages)
    if rendered is None:
        raise RuntimeNotEvaluated("chat mode: the model has no chat template; use --dfqs-prompt-mode few-shot")
    return rendered
