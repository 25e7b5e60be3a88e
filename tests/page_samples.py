"""The pages' samples against real runs: a sample is a block of a page (README.md or docs/), and each run of its lines
between `...` lines (the page's cuts) appears, in order and line for line, in what the command printed. Timings, paths,
versions of the environment and this machine's figures are masked on both sides."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CUT = "..."
# Rows cut after the level: DFQS-14.1's status and evidence are this machine's (at least 80 GB of RAM), DFQS-3.6's this
# llama.cpp build's (the default build has no offload at all, CI's RPC build offloads to rpc-servers only).
MACHINE_ROWS = ("DFQS-14.1  info    ", "DFQS-3.6   MAY     ")
MASKS = (
    (re.compile(r"\d[\d,]*(\.\d+)? ?(s|tok/s)\b"), "N s"),  # a duration or a speed
    (re.compile(r"\(\d+:\d+:\d+\)"), "(N)"),  # pytest's h:mm:ss beside a long run's seconds
    (re.compile(r"this machine has [\d.]+ \w+"), "this machine has N"),
    (re.compile(r"(needs about|and margin) [\d.]+ \w+"), r"\1 N"),  # the dry run's measured bookkeeping moves a little
    (re.compile(r"informational: [^)]*"), "informational: ..."),  # DFQS-14.1 moves between met and not met
    (re.compile(r"^(dfqs model: \S+) \(.*\)$"), r"\1 (PATH)"),
    (re.compile(r"^(rootdir|plugins|platform|cachedir)[: ].*"), r"\1 ..."),
    (re.compile(r"\b\d+ (vs \d+ )?threads?\b"), "N threads"),  # the tests' llama.cpp threads move with the machine's load
)
CUT_WORD = re.compile(r"\s*\S*\.\.\.$")  # a row cut to the width: where it is cut moves with the lengths of the figures masked
OUTCOMES = re.compile(r"^=+ (\d+ \w+(, )?)+ in N s =+$")  # pytest's last line: its counts move with DFQS-14.1's status


def page_block(page: str, after: str) -> list[str]:
    """The first block (fenced, or indented by four spaces) after the first line of `page` that contains `after`."""
    lines = (ROOT / page).read_text().splitlines()
    start = next(index for index, line in enumerate(lines) if after in line) + 1
    while lines[start].strip() and not lines[start].startswith(("    ", "```")):
        start += 1  # the rest of the paragraph that introduces the block
    while not lines[start].strip():
        start += 1
    if lines[start].startswith("```"):
        end = lines.index("```", start + 1)
        return lines[start + 1 : end]
    block = []
    for line in lines[start:]:
        if line.strip() and not line.startswith("    "):
            break
        block.append(line.removeprefix("    "))
    return [line for line in block if line.strip()]


def masked(line: str) -> str:
    line = line.rstrip()
    cut = next((row for row in MACHINE_ROWS if line.startswith(row)), None)
    if cut:
        return cut
    line = CUT_WORD.sub(" ...", line)
    for pattern, replacement in MASKS:
        line = pattern.sub(replacement, line)
    return "== outcomes in N s ==" if OUTCOMES.match(line) else line


def segments(sample: list[str]) -> list[list[str]]:
    """The sample's runs of lines between its cuts."""
    runs: list[list[str]] = [[]]
    for line in sample:
        if line.strip() == CUT:
            runs.append([])
        else:
            runs[-1].append(masked(line))
    return [run for run in runs if run]


def assert_printed(sample: list[str], printed: list[str]) -> None:
    """Each run of the sample's lines is printed, line for line, after the run before it; else the run that is not,
    beside what was printed (both masked)."""
    lines = [masked(line) for line in printed]
    position = 0
    for run in segments(sample):
        found = next((start for start in range(position, len(lines) - len(run) + 1) if lines[start : start + len(run)] == run), None)
        if found is None:
            shown = "\n".join(lines[position:])
            raise AssertionError(f"the page's lines\n{chr(10).join(run)}\nare not among those printed (after line {position}):\n{shown}")
        position = found + len(run)
