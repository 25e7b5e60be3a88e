"""DFQS-3.5: a curve that falls off a cliff is not gradual degradation."""

from __future__ import annotations

from pytest_dfqs.clauses.long_context import cliffs
from pytest_dfqs.evaluation.context_stability import StabilityResult


def test_gradual_decline_has_no_cliff() -> None:
    assert cliffs(StabilityResult([512, 1024, 2048, 4096], [0.8, 0.7, 0.6, 0.5])) == []


def test_a_drop_of_more_than_half_between_neighbours_is_a_cliff() -> None:
    cliff = StabilityResult([512, 1024, 2048, 4096], [0.8, 0.78, 0.2, 0.19])
    assert cliffs(cliff) == ["1,024 -> 2,048 tokens: quality 0.975 -> 0.250"]


def test_drops_past_the_failure_boundary_are_not_judged() -> None:
    past = StabilityResult([512, 1024, 2048, 4096], [0.8, 0.6, 0.39, 0.01])  # fails at 2,048; the fall after it is downstream
    assert past.boundary() == (2048, False)
    assert cliffs(past) == []
