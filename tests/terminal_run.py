"""A command run as a person runs it: its output on a (pseudo-)terminal, as the terminal shows it."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

from tests.machine_speed import scaled

COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def in_a_terminal(command: list[str], folder: Path, env: dict[str, str]) -> tuple[int, list[str]]:
    """Exit status and lines of `command` with a pseudo-terminal as its stdout, colours taken out."""
    reader, writer = pty.openpty()
    child = subprocess.Popen(command, cwd=folder, env=env, stdout=writer, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    os.close(writer)
    chunks = []
    while True:
        try:
            chunk = os.read(reader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(reader)
    text = COLOUR.sub("", b"".join(chunks).decode("utf-8", "replace")).replace("\r\n", "\n")
    return child.wait(timeout=scaled(60)), [line.rsplit("\r", 1)[-1] for line in text.split("\n")]  # a carriage return overwrites


def pytest_in_a_terminal(args: list[str], folder: Path, columns: int, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    """`pytest ARGS` in `folder` on a terminal `columns` wide, without the caller's PYTEST_ADDOPTS."""
    env = {**(env or os.environ), "COLUMNS": str(columns)}
    env.pop("PYTEST_ADDOPTS", None)
    return in_a_terminal([sys.executable, "-m", "pytest", *args], folder, env)
