"""`template-renders`: the standard conversations rendered by the template in a bounded sandbox process.

Each template gets one child process (`sandbox.py`) that limits itself before
it reads the template: 512 MiB of address space, a CPU-time ceiling, no file
written; each conversation is stopped after `RENDER_SECONDS` and its output cut
at `MAX_OUTPUT_CHARS`. The child's answer, its death by a signal, or its
silence past the limits is the rendering's outcome; nothing of the template
runs in the pytest process.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from .conversations import FIXED_DAY, STANDARD, TOOLS, WITH_TOOL_CALL, WITH_TOOL_CALL_STRING, WITHOUT_SYSTEM

RENDERED, RAISED, FAILED = "rendered", "raised", "failed"  # the template's own outcomes: its text, its refusal, its error
TIME, MEMORY, OUTPUT, SECURITY, RECURSION = "time", "memory", "output", "security", "recursion"  # the sandbox stopped it
MUTATION = "mutation"  # a list or dict changed in place, which the immutable sandbox (transformers' too) refuses
HARMLESS = (RENDERED, RAISED, FAILED, MUTATION)  # outcomes that are the template's own doing, not a stop by the sandbox

RENDER_SECONDS = 1.0  # per conversation; the 70 real templates of llama.cpp's corpus render in milliseconds
MAX_OUTPUT_CHARS = 65_536
MEMORY_BYTES = 512 * 2**20
START_SECONDS = 20.0  # the child's interpreter and jinja2, on a loaded machine
ENDED = "ended"  # the child died or did not answer: the limits, or a crash of the renderer
STANDARD_NAME, WITHOUT_SYSTEM_NAME, TOOL_CALL_NAME, TOOL_CALL_STRING_NAME = "standard", "without-system", "tool-call", "tool-call-string"


@dataclass(frozen=True)
class Rendering:
    """One conversation rendered by a template: its text, or what happened instead."""

    conversation: str
    outcome: str  # sandbox.RENDERED, RAISED, FAILED, TIME, MEMORY, OUTPUT, SECURITY, RECURSION, or ENDED
    text: str | None = None
    message: str = ""

    @property
    def stopped(self) -> bool:
        """The sandbox or its limits stopped the template (not its own refusal, error or change of a list in place)."""
        return self.outcome not in HARMLESS


def conversations(uses_tools: bool) -> list[dict[str, Any]]:
    """What a template is asked to render: the standard conversation, without its system turn, and tool calls if it reads tools."""
    asked = [
        {"name": STANDARD_NAME, "context": {"messages": list(STANDARD)}},
        {"name": WITHOUT_SYSTEM_NAME, "context": {"messages": list(WITHOUT_SYSTEM)}},
    ]
    if uses_tools:
        asked.append({"name": TOOL_CALL_NAME, "context": {"messages": list(WITH_TOOL_CALL), "tools": list(TOOLS)}})
        asked.append({"name": TOOL_CALL_STRING_NAME, "context": {"messages": list(WITH_TOOL_CALL_STRING), "tools": list(TOOLS)}})
    return asked


def render_template(source: str, tokens: dict[str, str], asked: list[dict[str, Any]]) -> list[Rendering]:
    """Every conversation of `asked` rendered by `source` in the sandbox process, with the model's special tokens."""
    job = {
        "template": source,
        "tokens": tokens,
        "conversations": asked,
        "day": FIXED_DAY,
        "limits": {
            "seconds": RENDER_SECONDS,
            "chars": MAX_OUTPUT_CHARS,
            "memory_bytes": MEMORY_BYTES,
            "cpu_seconds": math.ceil(RENDER_SECONDS * len(asked)) + 1,  # one operation in C (a bignum power) ignores the timer
        },
    }
    wall = START_SECONDS + RENDER_SECONDS * len(asked)
    try:
        child = subprocess.run(
            [sys.executable, "-I", "-m", "pytest_dfqs.safety.sandbox"],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            timeout=wall,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return _unanswered(asked, TIME, f"the sandbox did not answer within {wall:g} s and was killed")
    return _answers(child, asked)


def _answers(child: subprocess.CompletedProcess[str], asked: list[dict[str, Any]]) -> list[Rendering]:
    if child.returncode < 0:
        name = _signal_name(-child.returncode)
        outcome = TIME if name == "SIGXCPU" else ENDED  # SIGXCPU: its CPU seconds ran out
        return _unanswered(asked, outcome, f"the sandbox process was ended by signal {name}")
    try:
        answers = json.loads(child.stdout)
        return [Rendering(a["name"], a["outcome"], a.get("text"), a.get("message", "")) for a in answers]
    except (ValueError, KeyError, TypeError):
        tail = (child.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return _unanswered(asked, ENDED, f"the sandbox process exited {child.returncode} without an answer: {tail}")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _unanswered(asked: list[dict[str, Any]], outcome: str, message: str) -> list[Rendering]:
    return [Rendering(conversation["name"], outcome, None, message) for conversation in asked]
