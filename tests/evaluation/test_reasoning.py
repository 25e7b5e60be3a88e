"""The reasoning prompt set: deterministic, shipped byte for byte, with exact answer keys, worked exemplars and one extraction rule."""

from __future__ import annotations

import datetime
import re

import pytest

from pytest_dfqs.evaluation.reasoning import (
    CHANCE,
    SET_FILE,
    SET_ID,
    WEEKDAYS,
    Item,
    chat_messages,
    extract_answer,
    format_failures,
    generate_items,
    load_set,
    per_kind,
    render_set,
    wilson_interval,
)


def test_shipped_set_is_what_the_generator_makes() -> None:
    assert SET_ID == "dfqs-reasoning-v2" and SET_FILE.name == "reasoning-v2.jsonl"
    assert SET_FILE.read_text(encoding="utf-8") == render_set(generate_items())
    prompts = load_set()
    assert len(prompts.items) == 320 and len({item.id for item in prompts.items}) == 320
    assert {item.kind for item in prompts.items[:4]} == {"arithmetic", "boolean", "dates", "ordering"}  # any prefix is balanced
    assert len(prompts.sha256) == 64
    assert {kind: len(shown) for kind, shown in prompts.exemplars.items()} == dict.fromkeys(CHANCE, 4)
    asked = {item.question for item in prompts.items}
    for shown in prompts.exemplars.values():
        assert not asked & {e.question for e in shown}  # an exemplar never gives an item's answer away
        assert all(a.answer != b.answer for a, b in zip(shown, shown[1:]))  # no answer is shown as the habit
    assert [e.answer for e in prompts.exemplars["boolean"]] == ["true", "false", "true", "false"]


def _recomputed(item: Item) -> str:
    """The answer worked out again from the question's text alone."""
    if item.kind == "arithmetic":
        a, b, c, d = map(int, re.findall(r"\d+", item.question))
        return str(a * b - c + d)
    if item.kind == "dates":
        day = datetime.date.fromisoformat(re.search(r"\d{4}-\d{2}-\d{2}", item.question)[0])
        days = int(re.search(r"it (\d+) days", item.question)[1])
        return WEEKDAYS[(day + datetime.timedelta(days=days)).weekday()]
    if item.kind == "ordering":
        pairs = re.findall(r"(\w+) is taller than (\w+)", item.question)
        taller, shorter = {a for a, _ in pairs}, {b for _, b in pairs}
        (answer,) = (taller - shorter) if "tallest" in item.question else (shorter - taller)
        return answer
    values = dict(re.findall(r"(\w) is (true|false)", item.question))
    expression = re.search(r"Is (.*) true or false", item.question)[1]
    for name, value in values.items():
        expression = expression.replace(name, value.capitalize())
    return str(eval(expression)).lower()


def test_answer_keys_and_worked_exemplars_hold_when_recomputed_from_the_questions() -> None:
    prompts = load_set()
    exemplars = [e for shown in prompts.exemplars.values() for e in shown]
    for item in prompts.items + exemplars:
        assert item.answer == _recomputed(item), item.id
    for exemplar in exemplars:  # the working ends at the answer it shows
        assert extract_answer(exemplar, exemplar.working) == (exemplar.answer.lower(), "no answer line"), exemplar.working


def test_the_few_shot_prompt_shows_the_kinds_exemplars_then_leaves_the_working_to_the_model() -> None:
    prompts = load_set()
    item = prompts.items[2]
    prompt = prompts.prompt(item)
    assert prompt.count("Question: ") == 5 and prompt.count("\nAnswer: ") == 4
    assert all(e.question in prompt and e.kind == item.kind for e in prompts.exemplars[item.kind])
    assert prompt.endswith(f"\n\nQuestion: {item.question}\nWorking:")


def test_chat_mode_asks_for_a_final_answer_line_of_the_kinds_type() -> None:
    item = load_set().items[1]
    system, user = chat_messages(item)
    assert system["role"] == "system" and "`Answer: X`" in system["content"]
    assert user == {"role": "user", "content": f"{item.question}\nX is true or false."}


ARITHMETIC = Item("arith-000", "arithmetic", "Start with 12. Multiply by 23, subtract 37, then add 39. What is the result?", "278")
BOOLEAN = Item("bool-001", "boolean", "P is true, Q is false, R is true. Is ((P and Q) and R) true or false?", "false")
DATES = Item("date-007", "dates", "Today is Monday, 2026-11-02. What weekday is it 45 days from today?", "Thursday")
ORDERING = Item(
    "order-007", "ordering", "Dev is taller than Fay. Gus is taller than Hana. Hana is taller than Dev. Who is the shortest?", "Fay"
)


@pytest.mark.parametrize(
    ("item", "output", "expected"),
    [
        # replies of SmolLM2-135M and Gemma 3 270M at the quick budget, word for word
        (ARITHMETIC, " 12 * 23 = 264. 264 - 37 = 239. 239 + 37 = 308. 308 + 39 = 437.\nAnswer: 437\n", ("437", "answer line")),
        (BOOLEAN, " false or true is false. false and true is true.\nAnswer: false", ("false", "answer line")),
        (
            ORDERING,
            " From tallest to shortest: Gus, Hana, Ben, Ben. Ben is taller than Gus.\nAnswer: Ben\n",
            ("ben", "answer line, not of the asked type"),  # Ben is not one of the question's names
        ),
        (ARITHMETIC, "12 * 23 - 37 + 39 = 323", ("323", "no answer line")),
        (ORDERING, "Ben is taller than Eli.\nEli is taller than Fay.\n\nThe answer is: Fay.", ("fay", "no answer line")),
        (DATES, "2026-09-12 is a day of the week.", (None, "no answer")),
        # the rule's other edges
        (ARITHMETIC, "**Answer:** 1,278", ("1278", "answer line")),
        (ARITHMETIC, "Answer: -4\nFinal answer: 278", ("278", "answer line")),
        (DATES, "Answer: thursday.", ("thursday", "answer line")),
        (ARITHMETIC, "Answer: twelve.\nAnswer:", ("twelve", "answer line, not of the asked type")),  # an empty line does not count
        (BOOLEAN, "", (None, "no answer")),
    ],
)
def test_answer_extraction(item: Item, output: str, expected: tuple[str | None, str]) -> None:
    assert extract_answer(item, output) == expected


def test_format_failures_are_counted_by_reason_beside_the_budget_hits() -> None:
    formats = ["answer line"] * 6 + ["no answer line", "no answer", "answer line, not of the asked type", "no answer line"]
    outcomes = [{"format": f, "ended": "budget" if index < 3 else "end"} for index, f in enumerate(formats)]
    assert format_failures(outcomes) == {
        "format_failures": 3,
        "format_failure_rate": 0.3,
        "format_failure_reasons": {"no answer line": 2, "no answer": 1},
        "off_type_answers": 1,
        "budget_hits": 3,
    }


def test_wilson_interval() -> None:
    assert wilson_interval(0, 40) == (0.0, pytest.approx(0.0876, abs=1e-4))
    low, high = wilson_interval(20, 40)
    assert low == pytest.approx(0.352, abs=1e-3) and high == pytest.approx(0.648, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_each_kind_is_scored_beside_its_chance_level() -> None:
    """Two kinds answered: a perfect boolean run leaves chance (1/2) behind only once its interval clears it."""
    outcomes = [{"kind": "boolean", "correct": True}] * 4 + [{"kind": "dates", "correct": False}] * 3
    kinds = per_kind(outcomes)
    assert set(kinds) == {"boolean", "dates"}  # a kind with no item asked is not reported
    boolean, dates = kinds["boolean"], kinds["dates"]
    assert (boolean["items"], boolean["correct"], boolean["score"], boolean["chance"]) == (4, 4, 1.0, 0.5)
    assert boolean["wilson_95"][0] == pytest.approx(0.510, abs=1e-3) and boolean["above_chance"]
    assert dates["chance"] == pytest.approx(1 / 7) and not dates["above_chance"]
    assert not per_kind([{"kind": "boolean", "correct": True}] * 3)["boolean"]["above_chance"]  # 3 of 3: not yet
    assert CHANCE == {"arithmetic": 0.0, "boolean": 0.5, "dates": pytest.approx(1 / 7), "ordering": 0.25}
