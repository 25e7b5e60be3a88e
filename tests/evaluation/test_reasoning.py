"""The reasoning prompt set: deterministic, shipped byte for byte, with exact answer keys."""

from __future__ import annotations

import datetime
import re

import pytest

from pytest_dfqs.evaluation.reasoning import (
    CHANCE,
    SET_FILE,
    WEEKDAYS,
    extract_answer,
    generate_items,
    is_correct,
    load_set,
    per_kind,
    render_set,
    wilson_interval,
)


def test_shipped_set_is_what_the_generator_makes() -> None:
    assert SET_FILE.read_text(encoding="utf-8") == render_set(generate_items())
    items, digest = load_set()
    assert len(items) == 320 and len({item.id for item in items}) == 320
    assert {item.kind for item in items[:4]} == {"arithmetic", "boolean", "dates", "ordering"}  # any prefix is balanced
    assert len(digest) == 64


def test_answer_keys_hold_when_recomputed_from_the_questions() -> None:
    for item in load_set()[0]:
        if item.kind == "arithmetic":
            a, b, c, d = map(int, re.findall(r"\d+", item.question))
            assert item.answer == str(a * b - c + d)
        elif item.kind == "dates":
            day = datetime.date.fromisoformat(re.search(r"\d{4}-\d{2}-\d{2}", item.question)[0])
            days = int(re.search(r"it (\d+) days", item.question)[1])
            assert item.answer == WEEKDAYS[(day + datetime.timedelta(days=days)).weekday()]
        elif item.kind == "ordering":
            pairs = re.findall(r"(\w+) is taller than (\w+)", item.question)
            taller = {a for a, _ in pairs}
            shorter = {b for _, b in pairs}
            expected = (taller - shorter) if "tallest" in item.question else (shorter - taller)
            assert {item.answer} == expected
        else:
            values = dict(re.findall(r"(\w) is (true|false)", item.question))
            expression = re.search(r"Is (.*) true or false", item.question)[1]
            for name, value in values.items():
                expression = expression.replace(name, value.capitalize())
            assert item.answer == str(eval(expression)).lower()


@pytest.mark.parametrize(
    ("output", "answer"),
    [
        (" 278", "278"),
        ("\nThe answer is: False", "false"),
        (" Thursday.", "thursday"),
        ("", ""),
        (" -12 apples", "-12"),
    ],
)
def test_answer_extraction(output: str, answer: str) -> None:
    assert extract_answer(output) == answer


def test_scoring_is_exact_match() -> None:
    item = load_set()[0][0]
    assert is_correct(item, f" {item.answer}\n") and not is_correct(item, " 0")


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
