"""Numbers as cards write them, read back with the interval their written precision allows."""

from __future__ import annotations

import pytest

from pytest_dfqs.modelfile.units import read_quantity


@pytest.mark.parametrize(
    ("text", "kind", "low", "high"),
    [
        ("61.6 GB", "bytes", 61.55e9, 61.65e9),
        ("57.3 GB", "bytes", 57.25e9, 57.35e9),
        ("80.8 GiB", "bytes", 80.75 * 2**30, 80.85 * 2**30),
        ("50 GB", "bytes", 49.5e9, 50.5e9),
        ("284B", "count", 283.5e9, 284.5e9),
        ("13B", "count", 12.5e9, 13.5e9),
        ("13.8B", "count", 13.75e9, 13.85e9),
        ("129,280", "count", 129_279.5, 129_280.5),
        ("256", "count", 255.5, 256.5),
        ("68%", "fraction", 0.675, 0.685),
    ],
)
def test_the_written_precision_sets_the_interval(text: str, kind: str, low: float, high: float) -> None:
    quantity = read_quantity(text, kind)
    assert quantity.low == pytest.approx(low) and quantity.high == pytest.approx(high)
    assert quantity.admits((low + high) / 2) and not quantity.admits(high * 1.001)


def test_a_given_tolerance_replaces_the_written_one() -> None:
    assert read_quantity("13B", "count", tolerance=1e9).admits(13.8e9)
    assert not read_quantity("13B", "count", tolerance=0.1e9).admits(13.8e9)


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [
        ("about 60 GB", "bytes", "is not a number as cards write them"),
        ("61.6 GX", "bytes", "unit 'GX' is not one of B, KB, MB, GB, TB, KIB, MIB, GIB, TIB for bytes"),
        ("284 GB", "count", "unit 'GB' is not one of none, K, M, B, T for count"),
    ],
)
def test_what_cannot_be_read_says_why(text: str, kind: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_quantity(text, kind)
