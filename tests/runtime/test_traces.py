"""Reading the worker's routing traces back: every row at its sequence and position, or left out when shared."""

from __future__ import annotations

import pytest

from pytest_dfqs.runtime.traces import TraceMismatch, row_owners


def test_rows_two_sequences_share_are_left_out() -> None:
    sequences = [[1, 5, 6], [1, 5, 7], [1, 8]]
    trace = {"tokens": [1, 5, 6, 1, 5, 7, 1, 8], "positions": [0, 1, 2, 0, 1, 2, 0, 1]}
    owners = row_owners(trace, sequences)
    assert owners == [None, None, (0, 2), None, None, (1, 2), None, (2, 1)]
    with pytest.raises(TraceMismatch, match="token 9 at position 2, which no sequence fed"):
        row_owners({"tokens": [1, 5, 9], "positions": [0, 1, 2]}, [[1, 5, 6]])
    with pytest.raises(TraceMismatch, match="2 token rows recorded for 3 tokens fed"):
        row_owners({"tokens": [1, 5], "positions": [0, 1]}, [[1, 5, 6]])
