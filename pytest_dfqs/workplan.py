"""The work plan of the runtime and eval tiers: what llama.cpp will be asked to do, before it starts, and when it will end.

On the reference model a certification takes hours, so the plan is printed
before the first load: per model, the loads and, per check, the prompt tokens
it will compute, the prompt tokens prefix reuse saves, and the decode tokens it
may ask for (a budget: an upper bound). Prompts are counted in the model's own
tokens: llama.cpp reads the vocabulary alone (no weight) before the model is
loaded, a fraction of a second even for the reference; when it cannot, they
are estimated at CHARS_PER_TOKEN characters a token, and the plan says so.
Once the CPU generation check has measured the model's prompt and decode
speeds, the plan becomes an estimate of the time left (`Speeds`: a charge per
prompt token, per llama_decode call and per sandboxed program; at the eval tier
calibrated on one full batch and a few warm decoded tokens), counting the
replies the prompt sets' own answers suggest (a worked exemplar's length,
HumanEval's canonical solution) rather than every budget spent, and each
token's attention to the positions before it (`modelfile.attention`: an 8K
haystack costs about twice its tokens' weights).
"""

from __future__ import annotations

import statistics
import zlib
from dataclasses import dataclass

from .clauses.cpu_operation import GENERATED_TOKENS
from .clauses.extended_context import EXTENDED_CONTEXT, FAR_DECODED
from .clauses.routing_determinism import GENERATED, standard_loads
from .evaluation.budget import BUDGETS, CHAT, Budget
from .evaluation.code import MAX_TOKENS as CODE_TOKENS
from .evaluation.code import instruction, load_problems
from .evaluation.context_stability import context_lengths, fact_texts, facts, planned_questions
from .evaluation.reasoning import MAX_TOKENS as REASONING_TOKENS
from .evaluation.reasoning import chat_messages, load_set, worked
from .evaluation.routing_pressure import OTHER_TOKENS, PREDICTED, pressure_points
from .evaluation.sandbox import sandbox_seconds
from .evaluation.throughput import WARM_UP_TOKENS
from .model import ModelUnderTest
from .modelfile.attention import Attention, attention
from .modelfile.units import human_count
from .runtime.client import BATCH, GENERATION_PROMPT, RuntimeUnavailable
from .runtime.host import threads_text
from .runtime.shared_prefix import declared_prefix
from .runtime.traces import ROUTING_PROMPTS

CHARS_PER_TOKEN = 4  # the estimate when llama.cpp cannot read the vocabulary


@dataclass(frozen=True)
class Step:
    what: str
    batches: tuple[int, ...]  # the prompt tokens it computes, in llama.cpp's batches
    decode_tokens: int  # the budget: at most this many
    reused_tokens: int = 0  # prompt tokens a kept prefix saves
    replies: int = 0  # the tokens the time estimate expects it to decode, one llama_decode call each
    programs: int = 0  # model-written programs run in the sandbox
    attention: float = 0.0  # the attention of every token it computes, in tokens of weights' work (`modelfile.attention`)

    @property
    def prompt_tokens(self) -> int:
        return sum(self.batches)


@dataclass(frozen=True)
class Speeds:
    """What the time estimate charges, in seconds: a prompt token in a batch, a llama_decode call (on a CPU mostly one
    pass over the weights), a sandboxed program. A reply's token is a call of one token."""

    per_token: float
    per_call: float
    per_program: float = 0.0

    def seconds(self, step: Step) -> float:
        calls = len(step.batches) + step.replies
        weights = step.prompt_tokens + step.replies + step.attention
        return weights * self.per_token + calls * self.per_call + step.programs * self.per_program


def chunks(tokens: int) -> list[int]:
    """A prompt of `tokens`, in the batches llama.cpp is given (BATCH tokens at most)."""
    return [min(BATCH, tokens - start) for start in range(0, tokens, BATCH)]


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
    heed = attention(model.header(), model.facts())
    generation = words.special + len(words.texts["generation"][0])
    speed_check = _asked(heed, generation, GENERATED_TOKENS)
    steps = [Step("cpu-generation", tuple(chunks(generation)), GENERATED_TOKENS, replies=GENERATED_TOKENS, attention=speed_check)]
    if model.facts().is_moe:  # DFQS-3.3 does not apply to a dense model
        loads = 1 + len(standard_loads(model.threads, bool(model.rpc)))
        routing = _routing_prompt(words)
        batch = chunks(len(ROUTING_PROMPTS) * routing)  # a load's prompts are one batch, then decoded together
        decoded = loads * GENERATED  # a load's prompts are extended together: a call per step
        heeded = loads * len(ROUTING_PROMPTS) * _asked(heed, routing, GENERATED)
        steps.append(Step("routing-determinism", tuple(batch * loads), decoded * len(ROUTING_PROMPTS), replies=decoded, attention=heeded))
    if (model.facts().context_length or 0) > EXTENDED_CONTEXT:
        far = EXTENDED_CONTEXT + 1
        heeded = _asked(heed, far, FAR_DECODED)
        steps.append(Step("decode-past-64k", tuple(chunks(far)), FAR_DECODED, replies=FAR_DECODED, attention=heeded))
    if tier == "eval":
        steps += _eval_steps(model, words, generation, heed)
    return steps


def _asked(heed: Attention, prompt: int, reply: int, shared: int = 0) -> float:
    """A prompt's attention (past a kept prefix of `shared` tokens) and its reply's, in tokens of weights' work."""
    return heed.work(shared, prompt - shared) + heed.work(prompt, reply)


def vocabulary(model: ModelUnderTest, tier: str) -> Vocabulary:
    """The plan's texts in the model's own tokens, asked of llama.cpp once per model; estimated when it cannot answer."""
    if model.planned_vocabulary is None:
        texts, conversations = planned_texts(model, tier)
        try:
            answer = model.runtime().planned_tokens(texts, conversations)
            if not answer["texts"]["generation"][0]:
                raise RuntimeUnavailable("its vocabulary gives no token for the standard prompt")
            model.planned_vocabulary = Vocabulary(answer["special"], answer["texts"], answer["conversations"])
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
        "replies": [" " + "".join(worked(e) for e in prompts.exemplars[kind]) for kind in kinds],  # a reply: their mean length
        "code": [problem.prompt for problem in problems],
        "solutions": [problem.solution for problem in problems],
        "facts": [text for fact in facts(lengths, budget.depths) for text in fact_texts(fact)],
    }
    conversations = {
        "reasoning": [chat_messages(item) for item in items],
        "system": [chat_messages(items[0])[:1]],  # the system turn every chat prompt begins with
        "code": [instruction(problem) for problem in problems],
    }
    return texts, conversations if model.eval_options.prompt_mode == CHAT else {}


def _routing_prompt(words: Vocabulary) -> int:
    """Tokens of a routing prompt, on average."""
    routing = words.texts["routing"]
    return words.special + sum(len(tokens) for tokens in routing) // len(routing)


def _eval_steps(model: ModelUnderTest, words: Vocabulary, generation: int, heed: Attention) -> list[Step]:
    budget = BUDGETS[model.eval_options.budget]
    lengths = context_lengths(model.facts().context_length, budget.max_context)
    rounds, decoded = budget.throughput_rounds + 1, WARM_UP_TOKENS + budget.throughput_tokens * budget.throughput_rounds
    heeded = rounds * _asked(heed, generation, decoded // rounds)
    throughput = Step("cpu_tokens_per_sec", tuple(chunks(generation) * rounds), decoded, replies=decoded, attention=heeded)
    return [
        _reasoning_step(model, words, heed),
        _code_step(model, words, heed),
        _context_step(words, lengths, budget, heed),
        throughput,
        *_routing_pressure_steps(model, words, heed),
    ]


def _reasoning_step(model: ModelUnderTest, words: Vocabulary, heed: Attention) -> Step:
    """The budget's items, each prompt's shared beginning computed once when prefix reuse is on and the prompt fits a
    slot (`shared_prefix.declared_prefix`): a kind's exemplars in few-shot mode, the system turn in chat mode."""
    prompts = load_set()
    kinds = [item.kind for item in prompts.items[: BUDGETS[model.eval_options.budget].reasoning_items]]
    expected = {kind: len(tokens) // len(prompts.exemplars[kind]) + 1 for kind, tokens in zip(prompts.exemplars, words.texts["replies"])}
    chat = _chat(words, "reasoning")
    if chat is not None:
        system = _chat(words, "system") or [[]]
        asked = [(kind, "system", prompt, system[0]) for kind, prompt in zip(kinds, chat)]
    else:
        prefixes = {kind: words.prompt(tokens) for kind, tokens in zip(prompts.exemplars, words.texts["prefixes"])}
        asked = [(kind, kind, words.prompt(text), prefixes[kind]) for kind, text in zip(kinds, words.texts["reasoning"])]
    ctx, reuse = model.runtime_options().ctx, model.eval_options.prefix_reuse
    batches: list[int] = []
    reused, held, heeded, replies = 0, set(), 0.0, 0
    for kind, key, prompt, prefix in asked:
        shared = declared_prefix(prompt, prefix, REASONING_TOKENS[kind], ctx) if reuse else 0
        if shared and key in held:
            reused += shared
        else:
            batches += chunks(shared)  # a kept prefix is decoded alone, the rest after it
            held |= {key} if shared else set()
            heeded += heed.work(0, shared)
        batches += chunks(len(prompt) - shared)
        reply = expected[kind] if chat is None else REASONING_TOKENS[kind]  # a chat reply has no exemplar to go by
        heeded += _asked(heed, len(prompt), reply, shared)
        replies += reply
    budget = sum(REASONING_TOKENS[kind] for kind in kinds)
    label = f"reasoning_score ({len(kinds)} items)"
    return Step(label, tuple(batches), budget, reused, replies, attention=heeded)


def _code_step(model: ModelUnderTest, words: Vocabulary, heed: Attention) -> Step:
    """The budget's HumanEval problems: a prompt each (rendered in chat mode), a reply of about the canonical
    solution's length, its program run in the sandbox."""
    mode = CHAT if _chat(words, "code") is not None else "few-shot"
    prompts = _chat(words, "code") or [words.prompt(tokens) for tokens in words.texts["code"]]
    solutions = [len(solution) + 1 for solution in words.texts["solutions"]]
    batches = tuple(batch for prompt in prompts for batch in chunks(len(prompt)))
    heeded = sum(_asked(heed, len(prompt), reply) for prompt, reply in zip(prompts, solutions))
    problems = len(prompts)
    return Step(f"code_score ({problems} problems)", batches, problems * CODE_TOKENS[mode], 0, sum(solutions), problems, heeded)


def _chat(words: Vocabulary, name: str) -> list[list[int]] | None:
    """The rendered conversations' prompts; None in few-shot mode, or when llama.cpp cannot render one (the run falls
    back to few-shot then)."""
    rendered = words.conversations.get(name)
    if not rendered or any(tokens is None for tokens in rendered):
        return None
    return [words.prompt(tokens) for tokens in rendered if tokens is not None]


def _context_step(words: Vocabulary, lengths: list[int], budget: Budget, heed: Attention) -> Step:
    """The haystack once to the longest length, and a question per length and fact before it; scored, not decoded."""
    pieces = words.texts["facts"]
    told = [len(tokens) for tokens in pieces[0::3]]
    asked = [len(question) + len(answer) for question, answer in zip(pieces[1::3], pieces[2::3])]
    grown, questions = planned_questions(lengths, budget.depths, told, asked, words.special)
    heeded = heed.work(0, grown) + sum(heed.work(position, tokens) for position, tokens in questions)
    batches = chunks(grown) + [tokens for _, tokens in questions]
    return Step(f"context_stability_curve ({len(lengths)} lengths)", tuple(batches), 0, attention=heeded)


def _routing_pressure_steps(model: ModelUnderTest, words: Vocabulary, heed: Attention) -> list[Step]:
    """A MoE model's routing prompts alone, behind each fill and in each batch: one predicted token a run."""
    if not model.facts().is_moe:
        return []
    points = pressure_points(model.runtime_options().ctx, BUDGETS[model.eval_options.budget])
    prompts = len(ROUTING_PROMPTS)
    runs = prompts * (1 + len(points.fills) + len(points.sequences))
    companions = sum(count - 1 for count in points.sequences)  # the other sequences of each batch
    routing = _routing_prompt(words)
    batches = chunks(runs * routing + prompts * (sum(points.fills) + companions * OTHER_TOKENS))  # in tokens, not in their batches
    behind = sum(heed.work(0, fill + routing) for fill in points.fills) + (1 + len(points.sequences)) * heed.work(0, routing)
    heeded = prompts * (behind + companions * heed.work(0, OTHER_TOKENS))
    what = f"routing under pressure ({len(points.fills)} fills, {len(points.sequences)} batches)"
    return [Step(what, tuple(batches), runs * PREDICTED, replies=runs * PREDICTED, attention=heeded)]


def plan_line(model: ModelUnderTest, tier: str) -> str:
    steps = work_plan(model, tier)
    prompt, decode = sum(s.prompt_tokens for s in steps), sum(s.decode_tokens for s in steps)
    reused = sum(s.reused_tokens for s in steps)
    listed = "; ".join(_step_text(step) for step in steps)
    estimated = vocabulary(model, tier).estimated
    counted = f" (estimated at {CHARS_PER_TOKEN} characters a token: {estimated})" if estimated else " (in the model's own tokens)"
    load = f"1 load ({'RPC' if model.rpc else 'CPU'}, {threads_text(model.threads)})"
    return (
        f"plan for {model.label}: {load}, then prompt + decode tokens{counted}"
        f": {listed}; about {human_count(prompt)} prompt tokens computed{_reused(reused)} and up to"
        f" {human_count(decode)} decode tokens"
    )


def _step_text(step: Step) -> str:
    return f"{step.what} ~{human_count(step.prompt_tokens)}{_reused(step.reused_tokens)} + {human_count(step.decode_tokens)}"


def _reused(tokens: int) -> str:
    return f" (+{human_count(tokens)} reused)" if tokens else ""


def eta_line(model: ModelUnderTest, tier: str, prompt_per_sec: float, decode_per_sec: float) -> str:
    steps = work_plan(model, tier)
    speeds = calibrated(model, tier, steps[0], prompt_per_sec, decode_per_sec)
    seconds = sum(speeds.seconds(step) for step in steps[1:])  # the CPU generation check that measured the speeds is done
    return (
        f"{model.label}: at {prompt_per_sec:,.0f} prompt and {decode_per_sec:,.1f} decode tokens/s the planned work left"
        f" takes about {_duration(seconds)}"
    )


CALIBRATION_DECODED = 16  # tokens decoded one at a time after the eval tier's calibration batch, warm
CALIBRATION_ROUNDS = 3  # the median of three: one batch's time varies by 15% from one second to the next on a shared CPU


def calibrated(model: ModelUnderTest, tier: str, generation: Step, prompt_per_sec: float, decode_per_sec: float) -> Speeds:
    """The time estimate's charges. From the speed check alone (a short prompt and the model's first reply, both cold)
    at the runtime tier; at the eval tier, whose steps feed hundreds of batches and replies, from one full batch and a
    few tokens decoded after it, warm (a prompt token's share and a call's share of a batch; the median of
    CALIBRATION_ROUNDS), and one sandboxed program. A step's attention is charged as that many tokens' weights."""
    per_decoded = 1 / max(decode_per_sec, 1e-9)
    per_token = max(1 / max(prompt_per_sec, 1e-9) - per_decoded / generation.prompt_tokens, 0.0)
    plain = Speeds(per_token, per_decoded - per_token)
    words = vocabulary(model, tier)
    text = [token for tokens in words.texts.get("reasoning", []) for token in tokens]
    if tier != "eval" or words.estimated or not text:  # stand-in tokens are no token ids
        return plain
    tokens = (text * (BATCH // len(text) + 1))[:BATCH]
    try:
        timings = [model.runtime().prompt_timing(tokens, CALIBRATION_DECODED) for _ in range(CALIBRATION_ROUNDS)]
    except RuntimeUnavailable:
        return plain
    batch, per_decoded = (statistics.median(timing[part] for timing in timings) for part in range(2))
    per_token = max((batch - per_decoded) / (BATCH - 1), 0.0)
    return Speeds(per_token, max(per_decoded - per_token, 0.0), sandbox_seconds())


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min {rest:02d} s"
    return f"{seconds / 3600:.1f} h"
