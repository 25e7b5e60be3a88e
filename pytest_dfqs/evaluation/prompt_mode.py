"""How the eval tier asks: few-shot completion or the model's own chat template.

- few-shot: worked exemplars of the same kind (shipped in the prompt set's
  file), then the question; HumanEval's standard completion prompt. Works on
  any model, base or instruct.
- chat: the model's `tokenizer.chat_template` in the form llama.cpp's
  built-in templates give it (`llama_chat_apply_template`, no Jinja runs; the
  form's name is recorded), around an instruction to end with `Answer: X` (reasoning) or to reply with
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
llama.cpp recognizes, or whose template the safety group found dangerous,
falls back to few-shot, said in the terminal and recorded. The mode in force is part of the recorded conditions, so records
made in different modes are not comparable (DFQS-11.2).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from pytest_dfqs.runtime.client import Ask, Completion, ModelRuntime, RuntimeNotEvaluated

from .budget import CHAT, FEW_SHOT
from .journal import Journal

Item = TypeVar("Item")
GROUP_PER_SEQUENCE = 4  # items asked in one request per sequence extended together: the journal keeps each group

PROBE = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello."}]


def resolve_mode(runtime: ModelRuntime, requested: str, dangerous: bool = False) -> tuple[str, str | None, str | None]:
    """The mode in force, why it is not the one asked for (None when it is), and the chat rendering used (None in few-shot)."""
    if requested == FEW_SHOT:
        return FEW_SHOT, None, None
    if dangerous:
        return FEW_SHOT, "chat mode asked for, but the chat template is dangerous (see the safety group): few-shot instead", None
    rendered = runtime.render_chat(PROBE)
    problem = _chat_problem(rendered)
    if problem is not None:
        return FEW_SHOT, f"chat mode asked for, but {problem}: few-shot instead", None
    form = f"{rendered['form']} form" if rendered["form"] else "form"
    return CHAT, None, f"llama.cpp's built-in {form} of the model's chat template"


def _chat_problem(rendered: dict[str, Any]) -> str | None:
    if not rendered["template"]:
        return "the model has no chat template (tokenizer.chat_template)"
    if rendered["text"] is None:
        return "llama.cpp's built-in templates do not recognize the model's chat template (llama-server renders it with --jinja)"
    return None


def chat_prompt(runtime: ModelRuntime, messages: list[dict[str, str]]) -> str:
    """The conversation in the model's template, ready for its reply."""
    rendered = runtime.render_chat(messages)["text"]
    if rendered is None:
        raise RuntimeNotEvaluated("chat mode: llama.cpp cannot render the model's chat template; use --dfqs-prompt-mode few-shot")
    return str(rendered)


def system_turn(runtime: ModelRuntime, messages: list[dict[str, str]]) -> str | None:
    """The conversation's system turn as the model's template renders it alone: the beginning its chat prompts share
    (`--dfqs-prefix-reuse` computes it once); None without one, or when the template renders none."""
    if not messages or messages[0]["role"] != "system":
        return None
    rendered = runtime.render_chat(messages[:1])["text"]
    return str(rendered) if rendered else None


def prompt_work(reply: Completion) -> dict[str, int]:
    """What one reply cost: its prompt's tokens, those of its prefix kept from an earlier prompt (--dfqs-prefix-reuse),
    the tokens it decoded."""
    return {"prompt_tokens": reply.prompt_tokens, "reused_tokens": reply.reused_tokens, "decoded_tokens": reply.tokens}


def prompt_totals(outcomes: list[dict[str, Any]]) -> dict[str, int]:
    """Prompt tokens llama.cpp computed and those it reused, and the tokens it decoded, over the outcomes (a journal's
    older ones count none)."""
    reused = sum(outcome.get("reused_tokens", 0) for outcome in outcomes)
    return {
        "prompt_tokens_computed": sum(outcome.get("prompt_tokens", 0) for outcome in outcomes) - reused,
        "prompt_tokens_reused": reused,
        "decoded_tokens": sum(outcome.get("decoded_tokens", 0) for outcome in outcomes),
    }


def answered(
    runtime: ModelRuntime,
    journal: Journal,
    kind: str,
    items: list[Item],
    key: Callable[[Item], str],
    ask: Callable[[Item], Ask],
    outcome: Callable[[Item, Completion], dict[str, Any]],
) -> list[dict[str, Any]]:
    """Each item's outcome, in order: from the journal when a resumed run has it, else its reply asked of llama.cpp
    with the other items of its group (one item at `sequences` 1, else GROUP_PER_SEQUENCE a sequence, extended
    together) and kept in the journal as soon as its group is done."""
    journaled = [item for item in items if (kind, key(item)) in journal.entries]
    results = {key(item): journal.item(kind, key(item), dict) for item in journaled}  # read back: `dict` is never called
    todo = [item for item in items if key(item) not in results]
    size = 1 if runtime.options.sequences == 1 else GROUP_PER_SEQUENCE * runtime.options.sequences
    for start in range(0, len(todo), size):
        group = todo[start : start + size]
        for item, reply in zip(group, runtime.complete_many([ask(item) for item in group])):
            results[key(item)] = journal.item(kind, key(item), partial(outcome, item, reply))
    return [results[key(item)] for item in items]
