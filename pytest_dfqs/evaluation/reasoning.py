"""reasoning_score: a standardized, versioned reasoning prompt set and its scoring.

The set is generated deterministically (a seeded generator, four kinds of
items with exact answer keys: multi-step arithmetic, boolean logic, date
arithmetic, ordering by deduction) and shipped as conformance/prompts/
reasoning-v2.jsonl, with four worked exemplars per kind (their own seed, each
answer unlike the one before) for the few-shot prompt; its SHA-256 identifies
it in the metrics conditions. A test regenerates it and compares bytes, so the
file can never drift from the generator. (v1 asked a bare `Answer:` and kept
16 tokens for the reply; its records stay readable and are not comparable.)

The model is asked in the prompt mode in force (prompt_mode.py), greedily,
within a token budget per kind that leaves room for brief working
(MAX_TOKENS, recorded in the conditions); a finished `Answer: X` line ends the
reply. The answer is extracted by one rule (`extract_answer`) and scored by
exact match. A reply without an `Answer:` line is a format failure, counted by
reason in the details beside the answers of another type than asked and the
replies the budget cut short: a score is never low for a reason nobody can see.

The score is the accuracy with a 95% Wilson interval. Each kind also reports
its own score and interval beside its chance level, the score a model that
guesses among the answers the question offers would get (1/2 for true or
false, 1/7 for a weekday, 1/4 for one of four names, about 0 for a number):
a score inside the interval around chance says nothing about reasoning.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from pytest_dfqs.catalogue import CONFORMANCE_DIR
from pytest_dfqs.runtime.client import Ask, Completion, ModelRuntime

from .budget import Budget
from .journal import NO_JOURNAL, Journal
from .prompt_mode import CHAT, answered, chat_prompt, prompt_totals, prompt_work, system_turn

SET_ID = "dfqs-reasoning-v2"
SET_FILE = CONFORMANCE_DIR / "prompts" / "reasoning-v2.jsonl"
SEED = 20260519
ITEMS_PER_KIND = 80
EXEMPLARS_PER_KIND = 4
NAMES = ("Ada", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MAX_TOKENS = {"arithmetic": 96, "boolean": 96, "dates": 96, "ordering": 64}  # room for a few lines of working, then the answer
FEW_SHOT_STOP = ["\nQuestion:", "\n\n"]  # the next exemplar-shaped question, or the blank line that ends one
ANSWER = r"^[^\w\n]*(?:final\s+)?answer[^\w\n]*:"  # a line's `Answer:`, `**Answer:**` or `Final answer:`
ANSWER_LINE = re.compile(ANSWER + r"(.*)$", re.IGNORECASE | re.MULTILINE)
ANSWER_END = r"(?im)" + ANSWER + r"[^\n]*\w[^\n]*\n"  # a finished `Answer: X` line ends the reply
SYSTEM = "Solve the problem. You may work in a few short steps. End your reply with a last line of the form `Answer: X`."
ASKED = {
    "arithmetic": "X is a whole number.",
    "boolean": "X is true or false.",
    "dates": "X is a day of the week.",
    "ordering": "X is one of the names.",
}
OFF_TYPE = "answer line, not of the asked type"
FORMAT_FAILURES = ("no answer line", "no answer")  # the reply did not answer in the asked format
Z_95 = 1.959963984540054


@dataclass(frozen=True)
class Item:
    """A question with its exact answer; an exemplar also shows brief working, for the few-shot prompt."""

    id: str
    kind: str
    question: str
    answer: str
    working: str = ""


@dataclass(frozen=True)
class PromptSet:
    items: list[Item]
    exemplars: dict[str, list[Item]]  # by kind, in the order the few-shot prompt shows them
    sha256: str

    def prompt(self, item: Item) -> str:
        """The few-shot completion prompt: the kind's worked exemplars, then the question, the working left to the model."""
        return f"{self.shown(item.kind)}Question: {item.question}\nWorking:"

    def shown(self, kind: str) -> str:
        """The worked exemplars of a kind: the beginning every few-shot prompt of the kind shares."""
        return "".join(f"Question: {e.question}\nWorking: {worked(e)}\n" for e in self.exemplars[kind])


def worked(exemplar: Item) -> str:
    """An exemplar's reply after `Working: `: its working, then its answer line (what a reply in the format looks like)."""
    return f"{exemplar.working}\nAnswer: {exemplar.answer}\n"


def chat_messages(item: Item) -> list[dict[str, str]]:
    """The chat-mode conversation: the instruction to end with `Answer: X`, then the question."""
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"{item.question}\n{ASKED[item.kind]}"}]


def _arithmetic(rng: random.Random, index: int) -> Item:
    a, b, c, d = (rng.randint(2, 40) for _ in range(4))
    question = f"Start with {a}. Multiply by {b}, subtract {c}, then add {d}. What is the result?"
    working = f"{a} * {b} = {a * b}. {a * b} - {c} = {a * b - c}. {a * b - c} + {d} = {a * b - c + d}."
    return Item(f"arith-{index:03d}", "arithmetic", question, str(a * b - c + d), working)


def _boolean(rng: random.Random, index: int) -> Item:
    values = {name: rng.random() < 0.5 for name in ("P", "Q", "R")}
    first, second = rng.choice(("and", "or")), rng.choice(("and", "or"))
    negate = rng.random() < 0.5
    p = (not values["P"]) if negate else values["P"]
    left = (p and values["Q"]) if first == "and" else (p or values["Q"])
    result = (left and values["R"]) if second == "and" else (left or values["R"])
    facts = ", ".join(f"{name} is {_word(value)}" for name, value in values.items())
    expression = f"(({'not ' if negate else ''}P {first} Q) {second} R)"
    steps = [f"not P is {_word(p)}."] if negate else []
    steps += [
        f"{_word(p)} {first} {_word(values['Q'])} is {_word(left)}.",
        f"{_word(left)} {second} {_word(values['R'])} is {_word(result)}.",
    ]
    return Item(f"bool-{index:03d}", "boolean", f"{facts}. Is {expression} true or false?", _word(result), " ".join(steps))


def _word(value: bool) -> str:
    return str(value).lower()


def _dates(rng: random.Random, index: int) -> Item:
    start = datetime.date(2026, 1, 1) + datetime.timedelta(days=rng.randint(0, 364))
    days = rng.randint(3, 60)
    today, answer = WEEKDAYS[start.weekday()], WEEKDAYS[(start + datetime.timedelta(days=days)).weekday()]
    question = f"Today is {today}, {start.isoformat()}. What weekday is it {days} days from today?"
    weeks, rest = divmod(days, 7)
    working = f"{days} days is {_count(weeks, 'week')} and {_count(rest, 'day')}. {_count(rest, 'day')} after {today} is {answer}."
    return Item(f"date-{index:03d}", "dates", question, answer, working)


def _count(number: int, unit: str) -> str:
    return f"{number} {unit}{'' if number == 1 else 's'}"


def _ordering(rng: random.Random, index: int) -> Item:
    people = rng.sample(NAMES, 4)  # tallest first
    clues = [f"{people[i]} is taller than {people[i + 1]}" for i in range(3)]
    rng.shuffle(clues)
    asked, answer = ("tallest", people[0]) if rng.random() < 0.5 else ("shortest", people[-1])
    question = f"{'. '.join(clues)}. Who is the {asked}?"
    working = f"From tallest to shortest: {', '.join(people)}. The {asked} is {answer}."
    return Item(f"order-{index:03d}", "ordering", question, answer, working)


GENERATORS = (_arithmetic, _boolean, _dates, _ordering)
CHANCE = {"arithmetic": 0.0, "boolean": 1 / 2, "dates": 1 / len(WEEKDAYS), "ordering": 1 / 4}  # guessing among the answers offered


def generate_items() -> list[Item]:
    """The exemplars, then the whole set, interleaved by kind so that any prefix is balanced."""
    rng = random.Random(SEED)
    by_kind = [[replace(make(rng, index), working="") for index in range(ITEMS_PER_KIND)] for make in GENERATORS]
    asked = {item.question for kind in by_kind for item in kind}
    exemplar_rng = random.Random(SEED + 1)
    exemplars = [example for make in GENERATORS for example in _exemplars(make, exemplar_rng, asked)]
    return exemplars + [kind[index] for index in range(ITEMS_PER_KIND) for kind in by_kind]


def _exemplars(make: Callable[[random.Random, int], Item], rng: random.Random, asked: set[str]) -> list[Item]:
    """A kind's exemplars, drawn with their own seed: never a question of the set (it would give its answer away), and each
    answer unlike the one before it (true, false, true, ...), so that no answer is shown as the habit."""
    chosen: list[Item] = []
    while len(chosen) < EXEMPLARS_PER_KIND:
        drawn = make(rng, len(chosen))
        if drawn.question not in asked and (not chosen or drawn.answer != chosen[-1].answer):
            chosen.append(replace(drawn, id=f"example-{drawn.id}"))
    return chosen


def render_set(items: list[Item]) -> str:
    return "".join(json.dumps({k: v for k, v in item.__dict__.items() if v != ""}, sort_keys=True) + "\n" for item in items)


def load_set(path: Path = SET_FILE) -> PromptSet:
    """The shipped items and exemplars, with the file's SHA-256."""
    raw = path.read_bytes()
    everything = [Item(**json.loads(line)) for line in raw.decode("utf-8").splitlines() if line.strip()]
    exemplars: dict[str, list[Item]] = {}
    for item in everything:
        if item.working:
            exemplars.setdefault(item.kind, []).append(item)
    return PromptSet([item for item in everything if not item.working], exemplars, hashlib.sha256(raw).hexdigest())


def candidates(item: Item, text: str) -> list[str]:
    """Every answer of the item's type in `text`, in order, lower-cased: numbers, true/false, weekdays, the question's names."""
    if item.kind == "arithmetic":
        return [number.replace(",", "") for number in re.findall(r"-?\d+(?:,\d{3})*(?!\d)", text)]
    offered = {"boolean": ("true", "false"), "dates": WEEKDAYS, "ordering": [name for name in NAMES if name in item.question]}
    words = "|".join(re.escape(word) for word in offered[item.kind])
    return [found.lower() for found in re.findall(rf"\b(?:{words})\b", text, re.IGNORECASE)]


def extract_answer(item: Item, text: str) -> tuple[str | None, str]:
    """The extraction rule. The last `Answer:` line decides: its first answer of the item's type ("answer line"), else its
    words as they stand, scored wrong ("answer line, not of the asked type": answered in the format, with an answer the
    question does not offer). Without an `Answer:` line, the last answer of the type anywhere ("no answer line", a format
    failure); else nothing ("no answer", a format failure)."""
    answer_lines = [line.strip(" .*`") for line in ANSWER_LINE.findall(text) if line.strip(" .*`")]
    if answer_lines:
        stated = candidates(item, answer_lines[-1])
        return (stated[0], "answer line") if stated else (answer_lines[-1].lower(), OFF_TYPE)
    anywhere = candidates(item, text)
    return (anywhere[-1], "no answer line") if anywhere else (None, "no answer")


def question(runtime: ModelRuntime, prompts: PromptSet, item: Item, mode: str) -> Ask:
    """What the model is asked for `item` in `mode`, within the kind's token budget."""
    if mode == CHAT:
        messages = chat_messages(item)
        return Ask(chat_prompt(runtime, messages), MAX_TOKENS[item.kind], [], ANSWER_END, system_turn(runtime, messages))
    return Ask(prompts.prompt(item), MAX_TOKENS[item.kind], FEW_SHOT_STOP, ANSWER_END, prompts.shown(item.kind))


def ask(runtime: ModelRuntime, prompts: PromptSet, item: Item, mode: str) -> Completion:
    """The model's greedy reply to `item` in `mode`."""
    return runtime.complete_many([question(runtime, prompts, item, mode)])[0]


def _outcome(item: Item, reply: Completion) -> dict[str, Any]:
    answer, found = extract_answer(item, reply.text)
    return {
        "id": item.id,
        "kind": item.kind,
        "answer": item.answer,
        "output": reply.text,
        "extracted": answer,
        "format": found,
        "ended": reply.ended,
        "correct": answer == item.answer.lower(),
        **prompt_work(reply),
    }


def wilson_interval(correct: int, total: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion: sensible even at 0 or all correct."""
    if total == 0:
        return 0.0, 1.0
    p = correct / total
    denominator = 1 + Z_95**2 / total
    centre = (p + Z_95**2 / (2 * total)) / denominator
    half = Z_95 * math.sqrt(p * (1 - p) / total + Z_95**2 / (4 * total**2)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def measure_reasoning(runtime: ModelRuntime, budget: Budget, mode: str, journal: Journal = NO_JOURNAL) -> dict[str, Any]:
    """Greedy answers to the budget's items in `mode`, scored by exact match, with the outcome of each (kept in the journal)."""
    prompts = load_set()
    asked = prompts.items[: budget.reasoning_items]
    outcomes = answered(
        runtime, journal, "reasoning", asked, lambda item: item.id, partial(question, runtime, prompts, mode=mode), _outcome
    )
    return {
        "set": SET_ID,
        "sha256": prompts.sha256,
        "mode": mode,
        **scored(outcomes),
        **format_failures(outcomes),
        "per_kind": per_kind(outcomes),
        **prompt_totals(outcomes),
        "outcomes": outcomes,
    }


def format_failures(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """Replies without an `Answer:` line, by reason; answers of another type than asked; replies the token budget cut short."""
    reasons = {reason: sum(o["format"] == reason for o in outcomes) for reason in FORMAT_FAILURES}
    return {
        "format_failures": sum(reasons.values()),
        "format_failure_rate": sum(reasons.values()) / len(outcomes),
        "format_failure_reasons": reasons,
        "off_type_answers": sum(o["format"] == OFF_TYPE for o in outcomes),
        "budget_hits": sum(o["ended"] == "budget" for o in outcomes),
    }


def scored(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """Items, correct answers, the accuracy and its 95% Wilson interval."""
    correct = sum(o["correct"] for o in outcomes)
    low, high = wilson_interval(correct, len(outcomes))
    return {"items": len(outcomes), "correct": correct, "score": correct / len(outcomes), "wilson_95": [low, high]}


def per_kind(outcomes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each kind's score and interval beside its chance level, and whether the interval leaves chance behind."""
    kinds: dict[str, dict[str, Any]] = {}
    for kind, chance in CHANCE.items():
        mine = [o for o in outcomes if o["kind"] == kind]
        if mine:
            figures = scored(mine)
            kinds[kind] = {**figures, "chance": chance, "above_chance": figures["wilson_95"][0] > chance}
    return kinds
