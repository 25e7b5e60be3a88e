"""The work plan of the runtime and eval tiers: what llama.cpp will be asked to do, before it starts, and when it will end.

On the reference model a certification takes hours, so the plan is printed
before the first load: per model, the loads and, per check, the prompt tokens
it will compute, the prompt tokens prefix reuse saves, and the decode tokens it
may ask for (a budget: an upper bound). Prompts are counted in the model's own
tokens: llama.cpp reads the vocabulary alone (no weight) before the model is
loaded, a fraction of a second even for the reference; when it cannot, they
are estimated at CHARS_PER_TOKEN characters a token, and the plan says so.
Once the CPU generation check has measured the model's prompt and decode
speeds, the plan becomes an estimate of the time left, counting the replies the
prompt sets' own answers suggest (a worked exemplar's length, HumanEval's
canonical solution) rather than every budget spent.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from .clauses.cpu_operation import GENERATED_TOKENS
from .clauses.extended_context import EXTENDED_CONTEXT, FAR_DECODED
from .clauses.routing_determinism import GENERATED, standard_loads
from .evaluation.budget import BUDGETS, CHAT, Budget
from .evaluation.code import MAX_TOKENS as CODE_TOKENS
from .evaluation.code import instruction, load_problems
from .evaluation.context_stability import context_lengths, fact_texts, facts, planned_prompt_tokens
from .evaluation.reasoning import MAX_TOKENS as REASONING_TOKENS
from .evaluation.reasoning import chat_messages, load_set
from .evaluation.routing_pressure import OTHER_TOKENS, PREDICTED, pressure_points
from .evaluation.throughput import WARM_UP_TOKENS
from .model import ModelUnderTest
from .modelfile.units import human_count
from .runtime.client import GENERATION_PROMPT, RuntimeUnavailable
from .runtime.prompt_cache import declared_prefix
from .runtime.traces import ROUTING_PROMPTS

CHARS_PER_TOKEN = 4  # the estimate when llama.cpp cannot read the vocabulary


@dataclass(frozen=True)
class Step:
    what: str
    prompt_tokens: int  # computed
    decode_tokens: int  # the budget: at most this many
    reused_tokens: int = 0  # prompt tokens a kept prefix saves
    expected_decode: int | None = None  # what the ETA counts; None: the budget

    @property
    def decode_expected(self) -> int:
        return self.decode_tokens if self.expected_decode is None else min(self.expected_decode, self.decode_tokens)


@dataclass(frozen=True)
class Vocabulary:
    """The plan's texts in the model's tokens, by name (`ModelWorker.planned_tokens`), or estimated (`estimated`: why)."""

    special: int
    texts: dict[str, list[list[int]]]
    conversations: dict[str, list[list[int] | None]]
    estimated: str | None = None

    def prompt(self, tokens: list[int]) -> list[int]:
        """A prompt's tokens: the special ones it begins with, then its text's (ids < 0 stand for the special ones)."""
        return [-1 - index for index in range(self.special)] + tokens


def work_plan(model: ModelUnderTest, tier: str) -> list[Step]:
    """The steps the runtime (and eval) tier will ask llama.cpp for on this model."""
    words = vocabulary(model, tier)
    generation = words.special + len(words.texts["generation"][0])
    steps = [Step("cpu-generation", generation, GENERATED_TOKENS)]
    if model.facts().is_moe:  # DFQS-3.3 does not apply to a dense model
        runs = len(ROUTING_PROMPTS) * (1 + len(standard_loads(model.threads, bool(model.rpc))))
        steps.append(Step("routing-determinism", runs * _routing_prompt(words), runs * GENERATED))
    if (model.facts().context_length or 0) > EXTENDED_CONTEXT:
        steps.append(Step("decode-past-64k", EXTENDED_CONTEXT + 1, FAR_DECODED))
    if tier == "eval":
        steps += _eval_steps(model, words, generation)
    return steps


def vocabulary(model: ModelUnderTest, tier: str) -> Vocabulary:
    """The plan's texts in the model's own tokens, asked of llama.cpp once per model; estimated when it cannot answer."""
    if model.planned_vocabulary is None:
        texts, conversations = planned_texts(model, tier)
        try:
            answer = model.runtime().planned_tokens(texts, conversations)
            model.planned_vocabulary = Vocabulary(answer["special"], answer["texts"], answer["conversations"])
            if not answer["texts"]["generation"][0]:
                raise RuntimeUnavailable("its vocabulary gives no token for the standard prompt")
        except RuntimeUnavailable as failure:
            reason = str(failure).splitlines()[0]
            estimate = {name: [_estimated(text) for text in listed] for name, listed in texts.items()}
            unrendered: dict[str, list[list[int] | None]] = {name: [None] * len(listed) for name, listed in conversations.items()}
            model.planned_vocabulary = Vocabulary(1, estimate, unrendered, reason)
    vocabulary: Vocabulary = model.planned_vocabulary
    return vocabulary


def _estimated(text: str) -> list[int]:
    """Stand-in tokens, CHARS_PER_TOKEN characters each: equal texts begin with equal ones, as a prefix needs."""
    return [zlib.crc32(text[start : start + CHARS_PER_TOKEN].encode()) for start in range(0, len(text), CHARS_PER_TOKEN)]


def planned_texts(model: ModelUnderTest, tier: str) -> tuple[dict[str, list[str]], dict[str, list[list[dict[str, str]]]]]:
    """What the plan tokenizes: the runtime tier's prompts and, for the eval tier, the budget's prompt sets, by name."""
    texts: dict[str, list[str]] = {"generation": [GENERATION_PROMPT], "routing": list(ROUTING_PROMPTS)}
    if tier != "eval":
        return texts, {}
    budget = BUDGETS[model.eval_options.budget]
    prompts, (problems, _) = load_set(), load_problems()
    items, problems = prompts.items[: budget.reasoning_items], problems[: budget.code_problems]
    kinds = list(prompts.exemplars)
    lengths = context_lengths(model.facts().context_length, budget.max_context)
    texts |= {
        "reasoning": [prompts.prompt(item) for item in items],
        "prefixes": [prompts.shown(kind) for kind in kinds],
        "replies": [" " + _reply(prompts.exemplars[kind]) for kind in kinds],
        "code": [problem.prompt for problem in problems],
        "solutions": [problem.solution for problem in problems],
        "facts": [text for fact in facts(lengths, budget.depths) for text in fact_texts(fact)],
    }
    conversations = {"reasoning": [chat_messages(item) for item in items], "code": [instruction(problem) for problem in problems]}
    return texts, conversations if model.eval_options.prompt_mode == CHAT else {}


def _reply(exemplars: list[Any]) -> str:
    """A kind's worked exemplars' replies, one after another: the plan expects a reply of their mean length."""
    return "".join(f"{e.working}\nAnswer: {e.answer}\n" for e in exemplars)


def _routing_prompt(words: Vocabulary) -> int:
    """Tokens of a routing prompt, on average."""
    routing = words.texts["routing"]
    return words.special + sum(len(tokens) for tokens in routing) // len(routing)


def _eval_steps(model: ModelUnderTest, words: Vocabulary, generation: int) -> list[Step]:
    budget = BUDGETS[model.eval_options.budget]
    lengths = context_lengths(model.facts().context_length, budget.max_context)
    rounds = budget.throughput_rounds + 1
    return [
        _reasoning_step(model, words),
        _code_step(model, words),
        _context_step(words, lengths, budget),
        Step("cpu_tokens_per_sec", rounds * generation, budget.throughput_rounds * budget.throughput_tokens + WARM_UP_TOKENS),
        *_routing_pressure_steps(model, words),
    ]


def _reasoning_step(model: ModelUnderTest, words: Vocabulary) -> Step:
    """The budget's items: in chat mode their rendered conversations; in few-shot mode each kind's exemplars computed
    once when prefix reuse is on and the prompt fits a slot (`prompt_cache.declared_prefix`), the rest per item."""
    prompts = load_set()
    kinds = [item.kind for item in prompts.items[: BUDGETS[model.eval_options.budget].reasoning_items]]
    budgets = [REASONING_TOKENS[kind] for kind in kinds]
    label = f"reasoning_score ({len(kinds)} items)"
    chat = _chat(words, "reasoning")
    if chat is not None:
        return Step(label, sum(len(tokens) for tokens in chat), sum(budgets))
    computed, reused, held = 0, 0, set()
    prefixes = dict(zip(prompts.exemplars, words.texts["prefixes"]))
    ctx, reuse = model.runtime_options().ctx, model.eval_options.prefix_reuse
    for kind, text, most in zip(kinds, words.texts["reasoning"], budgets):
        prompt = words.prompt(text)
        shared = declared_prefix(prompt, words.prompt(prefixes[kind]), most, ctx) if reuse else 0
        saved = shared if shared and kind in held else 0
        held |= {kind} if shared else set()
        computed, reused = computed + len(prompt) - saved, reused + saved
    expected = {kind: len(tokens) // len(prompts.exemplars[kind]) + 1 for kind, tokens in zip(prompts.exemplars, words.texts["replies"])}
    return Step(label, computed, sum(budgets), reused, sum(expected[kind] for kind in kinds))


def _code_step(model: ModelUnderTest, words: Vocabulary) -> Step:
    """The budget's HumanEval problems: a prompt each (rendered in chat mode), a reply of about the canonical
    solution's length."""
    mode = CHAT if _chat(words, "code") is not None else "few-shot"
    prompts = _chat(words, "code") or [words.prompt(tokens) for tokens in words.texts["code"]]
    expected = sum(len(tokens) + 1 for tokens in words.texts["solutions"])
    problems = len(prompts)
    return Step(f"code_score ({problems} problems)", sum(len(p) for p in prompts), problems * CODE_TOKENS[mode], 0, expected)


def _chat(words: Vocabulary, name: str) -> list[list[int]] | None:
    """The rendered conversations' prompts; None in few-shot mode, or when llama.cpp cannot render one (the run falls
    back to few-shot then)."""
    rendered = words.conversations.get(name)
    if not rendered or any(tokens is None for tokens in rendered):
        return None
    return [words.prompt(tokens) for tokens in rendered if tokens is not None]


def _context_step(words: Vocabulary, lengths: list[int], budget: Budget) -> Step:
    """The haystack once to the longest length, and a question per length and fact before it; scored, not decoded."""
    pieces = words.texts["facts"]
    told = [len(tokens) for tokens in pieces[0::3]]
    asked = [len(question) + len(answer) for question, answer in zip(pieces[1::3], pieces[2::3])]
    prompt = planned_prompt_tokens(lengths, budget.depths, told, asked, words.special)
    return Step(f"context_stability_curve ({len(lengths)} lengths)", prompt, 0)


def _routing_pressure_steps(model: ModelUnderTest, words: Vocabulary) -> list[Step]:
    """A MoE model's routing prompts alone, behind each fill and in each batch: one predicted token a run."""
    if not model.facts().is_moe:
        return []
    points = pressure_points(model.runtime_options().ctx, BUDGETS[model.eval_options.budget])
    prompts = len(ROUTING_PROMPTS)
    runs = prompts * (1 + len(points.fills) + len(points.sequences))
    others = sum(count - 1 for count in points.sequences) * OTHER_TOKENS
    prompt_tokens = runs * _routing_prompt(words) + prompts * (sum(points.fills) + others)
    return [Step(f"routing under pressure ({len(points.fills)} fills, {len(points.sequences)} batches)", prompt_tokens, runs * PREDICTED)]


def plan_line(model: ModelUnderTest, tier: str) -> str:
    steps = work_plan(model, tier)
    prompt, decode = sum(s.prompt_tokens for s in steps), sum(s.decode_tokens for s in steps)
    reused = sum(s.reused_tokens for s in steps)
    listed = "; ".join(_step_text(step) for step in steps)
    estimated = vocabulary(model, tier).estimated
    counted = f" (estimated at {CHARS_PER_TOKEN} characters a token: {estimated})" if estimated else " (in the model's own tokens)"
    return (
        f"plan for {model.label}: 1 load ({'RPC' if model.rpc else 'CPU'}, {model.threads} threads), then prompt + decode tokens{counted}"
        f": {listed}; about {human_count(prompt)} prompt tokens computed{_reused(reused)} and up to"
        f" {human_count(decode)} decode tokens"
    )


def _step_text(step: Step) -> str:
    return f"{step.what} ~{human_count(step.prompt_tokens)}{_reused(step.reused_tokens)} + {human_count(step.decode_tokens)}"


def _reused(tokens: int) -> str:
    return f" (+{human_count(tokens)} reused)" if tokens else ""


def eta_line(model: ModelUnderTest, tier: str, prompt_per_sec: float, decode_per_sec: float) -> str:
    steps = work_plan(model, tier)[1:]  # the CPU generation check that measured the speeds is done
    seconds = sum(s.prompt_tokens for s in steps) / max(prompt_per_sec, 1e-9) + sum(s.decode_expected for s in steps) / max(
        decode_per_sec, 1e-9
    )
    return (
        f"{model.label}: at {prompt_per_sec:,.0f} prompt and {decode_per_sec:,.1f} decode tokens/s the planned work left"
        f" takes about {_duration(seconds)}"
    )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
