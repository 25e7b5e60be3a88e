"""The work plan of the runtime and eval tiers: what llama.cpp will be asked to do, before it starts, and when it will end.

On the reference model a certification takes hours, so the plan is printed
before the first load: per model, the loads and, per check, the prompt and
decode tokens it will ask for (prompts counted at about 4 characters a token;
decode budgets are upper bounds). Once the CPU generation check has measured
the model's prompt and decode speeds, the plan becomes an estimate of the time
left.
"""

from __future__ import annotations

from dataclasses import dataclass

from .clauses.cpu_operation import GENERATED_TOKENS
from .clauses.extended_context import EXTENDED_CONTEXT, FAR_DECODED
from .clauses.routing_determinism import GENERATED, standard_loads
from .evaluation.budget import BUDGETS, CHAT, FEW_SHOT
from .evaluation.code import MAX_TOKENS as CODE_TOKENS
from .evaluation.context_stability import context_lengths
from .evaluation.reasoning import MAX_TOKENS as REASONING_TOKENS
from .evaluation.routing_pressure import OTHER_TOKENS, PREDICTED, pressure_points
from .evaluation.throughput import WARM_UP_TOKENS
from .model import ModelUnderTest
from .modelfile.units import human_count
from .runtime.client import GENERATION_PROMPT
from .runtime.traces import ROUTING_PROMPTS

CHARS_PER_TOKEN = 4
REASONING_PROMPT_TOKENS = {FEW_SHOT: 190, CHAT: 70}  # four worked exemplars and the question; the question and its instruction
CODE_PROMPT_TOKENS = 150  # a HumanEval prompt: signature and docstring
REASONING_ITEMS, CODE_PROBLEMS = 320, 164  # the whole sets, for the full budget


@dataclass(frozen=True)
class Step:
    what: str
    prompt_tokens: int
    decode_tokens: int


def work_plan(model: ModelUnderTest, tier: str) -> list[Step]:
    """The steps the runtime (and eval) tier will ask llama.cpp for on this model."""
    prompt = len(GENERATION_PROMPT) // CHARS_PER_TOKEN
    runs = len(ROUTING_PROMPTS) * (1 + len(standard_loads(model.threads, bool(model.rpc))))
    steps = [Step("cpu-generation", prompt, GENERATED_TOKENS), Step("routing-determinism", runs * _routing_prompt(), runs * GENERATED)]
    declared = model.facts().context_length or 0
    if declared > EXTENDED_CONTEXT:
        steps.append(Step("decode-past-64k", EXTENDED_CONTEXT + 1, FAR_DECODED))
    if tier == "eval":
        steps += _eval_steps(model, prompt)
    return steps


def _routing_prompt() -> int:
    """Tokens of a routing prompt, on average."""
    return sum(len(text) for text in ROUTING_PROMPTS) // CHARS_PER_TOKEN // len(ROUTING_PROMPTS)


def _eval_steps(model: ModelUnderTest, generation_prompt: int) -> list[Step]:
    budget = BUDGETS[model.eval_options.budget]
    items, problems = budget.reasoning_items or REASONING_ITEMS, budget.code_problems or CODE_PROBLEMS
    lengths = context_lengths(model.facts().context_length, budget.max_context)
    rounds = budget.throughput_rounds + 1
    mode = model.eval_options.prompt_mode  # as asked: a chat model without a template will take the few-shot path's tokens
    return [
        Step(f"reasoning_score ({items} items)", items * REASONING_PROMPT_TOKENS[mode], items * max(REASONING_TOKENS.values())),
        Step(f"code_score ({problems} problems)", problems * CODE_PROMPT_TOKENS, problems * CODE_TOKENS[mode]),
        Step(f"context_stability_curve ({len(lengths)} lengths)", sum(lengths) * len(budget.depths), len(lengths) * len(budget.depths)),
        Step("cpu_tokens_per_sec", rounds * generation_prompt, budget.throughput_rounds * budget.throughput_tokens + WARM_UP_TOKENS),
        *_routing_pressure_steps(model),
    ]


def _routing_pressure_steps(model: ModelUnderTest) -> list[Step]:
    """A MoE model's routing prompts alone, behind each fill and in each batch: one predicted token a run."""
    if not model.facts().is_moe:
        return []
    points = pressure_points(model.runtime_options().ctx, BUDGETS[model.eval_options.budget])
    prompts = len(ROUTING_PROMPTS)
    runs = prompts * (1 + len(points.fills) + len(points.sequences))
    others = sum(count - 1 for count in points.sequences) * OTHER_TOKENS
    prompt_tokens = runs * _routing_prompt() + prompts * (sum(points.fills) + others)
    return [Step(f"routing under pressure ({len(points.fills)} fills, {len(points.sequences)} batches)", prompt_tokens, runs * PREDICTED)]


def plan_line(model: ModelUnderTest, tier: str) -> str:
    steps = work_plan(model, tier)
    prompt, decode = sum(s.prompt_tokens for s in steps), sum(s.decode_tokens for s in steps)
    listed = "; ".join(f"{s.what} ~{human_count(s.prompt_tokens)} + {human_count(s.decode_tokens)}" for s in steps)
    return (
        f"plan for {model.label}: 1 load ({'RPC' if model.rpc else 'CPU'}, {model.threads} threads), then prompt + decode tokens: {listed};"
        f" about {human_count(prompt)} prompt and up to {human_count(decode)} decode tokens"
    )


def eta_line(model: ModelUnderTest, tier: str, prompt_per_sec: float, decode_per_sec: float) -> str:
    steps = work_plan(model, tier)[1:]  # the CPU generation check that measured the speeds is done
    seconds = sum(s.prompt_tokens for s in steps) / max(prompt_per_sec, 1e-9) + sum(s.decode_tokens for s in steps) / max(
        decode_per_sec, 1e-9
    )
    return (
        f"{model.label}: at {prompt_per_sec:,.0f} prompt and {decode_per_sec:,.1f} decode tokens/s the planned work left"
        f" takes up to {_duration(seconds)}"
    )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
