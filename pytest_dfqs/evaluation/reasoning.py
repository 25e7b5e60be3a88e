"""reasoning_score: a standardized, versioned reasoning prompt set and its scoring.

The set is generated deterministically (a seeded generator, four kinds of
items with exact answer keys: multi-step arithmetic, boolean logic, date
arithmetic, ordering by deduction) and shipped as conformance/prompts/
reasoning-v1.jsonl; its SHA-256 identifies it in the metrics conditions. A
test regenerates it and compares bytes, so the file can never drift from the
generator. Answers are extracted from greedy output and scored by exact match;
the score is the accuracy with a 95% Wilson interval. Each kind also reports
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
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from pytest_dfqs.catalogue import CONFORMANCE_DIR
from pytest_dfqs.runtime.client import ModelRuntime

from .budget import Budget
from .journal import NO_JOURNAL, Journal

SET_ID = "dfqs-reasoning-v1"
SET_FILE = CONFORMANCE_DIR / "prompts" / "reasoning-v1.jsonl"
SEED = 20260519
ITEMS_PER_KIND = 80
NAMES = ("Ada", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
INSTRUCTION = "Answer with the final answer only."
STOP = ["\nQuestion", "\n\n"]
MAX_TOKENS = 16
Z_95 = 1.959963984540054


@dataclass(frozen=True)
class Item:
    id: str
    kind: str
    question: str
    answer: str

    def prompt(self) -> str:
        return f"Question: {self.question}\n{INSTRUCTION}\nAnswer:"


def _arithmetic(rng: random.Random, index: int) -> Item:
    a, b, c, d = (rng.randint(2, 40) for _ in range(4))
    question = f"Start with {a}. Multiply by {b}, subtract {c}, then add {d}. What is the result?"
    return Item(f"arith-{index:03d}", "arithmetic", question, str(a * b - c + d))


def _boolean(rng: random.Random, index: int) -> Item:
    values = {name: rng.random() < 0.5 for name in ("P", "Q", "R")}
    first, second = rng.choice(("and", "or")), rng.choice(("and", "or"))
    negate = rng.random() < 0.5
    p = (not values["P"]) if negate else values["P"]
    left = (p and values["Q"]) if first == "and" else (p or values["Q"])
    result = (left and values["R"]) if second == "and" else (left or values["R"])
    facts = ", ".join(f"{name} is {str(value).lower()}" for name, value in values.items())
    expression = f"(({'not ' if negate else ''}P {first} Q) {second} R)"
    return Item(f"bool-{index:03d}", "boolean", f"{facts}. Is {expression} true or false?", str(result).lower())


def _dates(rng: random.Random, index: int) -> Item:
    start = datetime.date(2026, 1, 1) + datetime.timedelta(days=rng.randint(0, 364))
    days = rng.randint(3, 60)
    question = f"Today is {WEEKDAYS[start.weekday()]}, {start.isoformat()}. What weekday is it {days} days from today?"
    return Item(f"date-{index:03d}", "dates", question, WEEKDAYS[(start + datetime.timedelta(days=days)).weekday()])


def _ordering(rng: random.Random, index: int) -> Item:
    people = rng.sample(NAMES, 4)  # tallest first
    clues = [f"{people[i]} is taller than {people[i + 1]}" for i in range(3)]
    rng.shuffle(clues)
    ask_tallest = rng.random() < 0.5
    question = f"{'. '.join(clues)}. Who is the {'tallest' if ask_tallest else 'shortest'}?"
    return Item(f"order-{index:03d}", "ordering", question, people[0] if ask_tallest else people[-1])


GENERATORS = (_arithmetic, _boolean, _dates, _ordering)
CHANCE = {"arithmetic": 0.0, "boolean": 1 / 2, "dates": 1 / len(WEEKDAYS), "ordering": 1 / 4}  # guessing among the answers offered


def generate_items() -> list[Item]:
    """The whole set, interleaved by kind so that any prefix is balanced."""
    rng = random.Random(SEED)
    by_kind = [[make(rng, index) for index in range(ITEMS_PER_KIND)] for make in GENERATORS]
    return [kind[index] for index in range(ITEMS_PER_KIND) for kind in by_kind]


def render_set(items: list[Item]) -> str:
    return "".join(json.dumps(item.__dict__, sort_keys=True) + "\n" for item in items)


def load_set(path: Path = SET_FILE) -> tuple[list[Item], str]:
    """The shipped items and the file's SHA-256."""
    raw = path.read_bytes()
    items = [Item(**json.loads(line)) for line in raw.decode("utf-8").splitlines() if line.strip()]
    return items, hashlib.sha256(raw).hexdigest()


def extract_answer(output: str) -> str:
    """The model's answer, lower-cased: what follows "answer is", else the first word or number."""
    stated = re.search(r"answer is:?\s*(-?\d+|[A-Za-z]+)", output, re.IGNORECASE)
    match = stated or re.search(r"-?\d+|[A-Za-z]+", output)
    return match[match.lastindex or 0].lower() if match else ""


def _outcome(runtime: ModelRuntime, item: Item) -> dict[str, Any]:
    output = runtime.complete(item.prompt(), MAX_TOKENS, STOP)
    return {"id": item.id, "kind": item.kind, "answer": item.answer, "output": output, "correct": is_correct(item, output)}


def is_correct(item: Item, output: str) -> bool:
    return extract_answer(output) == item.answer.lower()


def wilson_interval(correct: int, total: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion: sensible even at 0 or all correct."""
    if total == 0:
        return 0.0, 1.0
    p = correct / total
    denominator = 1 + Z_95**2 / total
    centre = (p + Z_95**2 / (2 * total)) / denominator
    half = Z_95 * math.sqrt(p * (1 - p) / total + Z_95**2 / (4 * total**2)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def measure_reasoning(runtime: ModelRuntime, budget: Budget, journal: Journal = NO_JOURNAL) -> dict[str, Any]:
    """Greedy answers to the budget's items, scored by exact match, with the outcome of each (kept in the journal)."""
    items, digest = load_set()
    outcomes = [journal.item("reasoning", item.id, partial(_outcome, runtime, item)) for item in items[: budget.reasoning_items]]
    return {"set": SET_ID, "sha256": digest, **scored(outcomes), "per_kind": per_kind(outcomes), "outcomes": outcomes}


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
