"""Numbers as model cards write them: 284.12B parameters, 61.60 GB; and read back, with the precision they were written in."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass


def human_count(value: int) -> str:
    """284123456789 -> '284.12B': parameter counts as model cards write them."""
    for unit, size in (("T", 10**12), ("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if value >= size:
            return f"{value / size:.2f}{unit}"
    return str(value)


def human_bytes(value: int) -> str:
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if value >= size:
            return f"{value / size:.2f} {unit}"
    return f"{value} B"


def human_gib(value: int) -> str:
    """Memory sizes as the preflight speaks of them: binary gigabytes."""
    return f"{value / (1 << 30):.1f} GiB"


COUNT_UNITS: dict[str, float] = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}
FRACTION_UNITS: dict[str, float] = {"": 1, "%": 0.01}
BYTE_UNITS: dict[str, float] = {
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 1 << 10,
    "MIB": 1 << 20,
    "GIB": 1 << 30,
    "TIB": 1 << 40,
}
WRITTEN = re.compile(r"\s*(?P<number>\d[\d,]*(?:\.\d+)?)\s*(?P<unit>[A-Za-z%]*)\s*")
RANGE = re.compile(r"(?P<low>[^-–]+?)\s*[-–]\s*(?P<high>[^-–]+)")  # "0.2-0.5", "0.2–0.5 tok/s" as tables write ranges
BOUND = re.compile(r"\s*(?P<sign><=|>=|<|>)\s*(?P<rest>.+)")  # "< 70 GB": an envelope, "≥ 80 GB" written as ">= 80 GB"


@dataclass(frozen=True)
class WrittenQuantity:
    """A number as a card writes it, and the interval it allows ("61.6 GB": 61.55 to 61.65 GB; "< 70 GB": below 70 GB)."""

    text: str
    value: float
    low: float
    high: float

    def admits(self, actual: float) -> bool:
        return self.low <= actual <= self.high

    def overlaps(self, low: float, high: float) -> bool:
        """Whether a measured interval (a confidence interval) shares a value with this one."""
        return self.low <= high and low <= self.high


def read_quantity(text: str, kind: str, tolerance: float | None = None) -> WrittenQuantity:
    """'284B' (kind count), '61.6 GB' or '80.8 GiB' (bytes), '68%' (fraction): the value and its interval.

    The interval is half a unit of the last written digit either way, scaled by the
    unit, unless `tolerance` (in the same unit as the result) is given. A range
    ('0.2-0.5') admits its two ends and what lies between; a bound ('< 70 GB',
    '>= 80 GB') everything on its side. ValueError says what could not be read.
    """
    bound = BOUND.fullmatch(text)
    if bound is not None:
        return _bound(text, bound["sign"], read_quantity(bound["rest"], kind, 0.0).value)
    spread = RANGE.fullmatch(text)
    if spread is not None:
        low, high = read_quantity(_with_unit_of(spread["low"], spread["high"]), kind, 0.0), read_quantity(spread["high"], kind, 0.0)
        return WrittenQuantity(text, (low.value + high.value) / 2, low.value, high.value)
    value, half = _read_number(text, kind)
    half = tolerance if tolerance is not None else half
    return WrittenQuantity(text, value, value - half, value + half)


def _with_unit_of(low: str, high: str) -> str:
    """'50' of '50-60 GB' takes the unit written once at the end: '50 GB'."""
    low_match, high_match = WRITTEN.fullmatch(low), WRITTEN.fullmatch(high)
    if low_match and high_match and not low_match["unit"]:
        return f"{low} {high_match['unit']}"
    return low


def _bound(text: str, sign: str, value: float) -> WrittenQuantity:
    below = math.nextafter(value, -math.inf) if sign == "<" else value
    above = math.nextafter(value, math.inf) if sign == ">" else value
    return WrittenQuantity(text, value, above, math.inf) if sign.startswith(">") else WrittenQuantity(text, value, -math.inf, below)


def _read_number(text: str, kind: str) -> tuple[float, float]:
    """The value, and half a unit of its last written digit."""
    match = WRITTEN.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a number as cards write them (such as 284B, 61.6 GB, 80.8 GiB, 68%, 0.2-0.5, < 70 GB)")
    digits, unit = match["number"].replace(",", ""), match["unit"]
    scale = _scale(unit, kind, text)
    decimals = len(digits.partition(".")[2])
    return float(digits) * scale, 0.5 * 10.0**-decimals * scale


def _scale(unit: str, kind: str, text: str) -> float:
    units = {"count": COUNT_UNITS, "bytes": BYTE_UNITS, "fraction": FRACTION_UNITS}[kind]
    key = unit.upper() if kind == "bytes" else unit
    if key not in units:
        known = ", ".join(u or "none" for u in units)
        raise ValueError(f"{text!r}: unit {unit!r} is not one of {known} for {kind}")
    return units[key]
