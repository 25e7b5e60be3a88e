"""Commands the tests interrupt, started as a command in a terminal is, where Ctrl-C reaches it.

A shell without job control starts its background jobs with SIGINT ignored (`pytest ... &` in a script, `nohup`), and a
Python started with SIGINT ignored keeps ignoring it: from such a job the interrupt tests would interrupt nothing
(shown: an eval run sent SIGINT under load carried on for 169 s and passed). The command gets SIGINT's default back
before it starts, and a process group of its own, which `os.killpg` sends the signal to as a terminal's Ctrl-C does.
"""

from __future__ import annotations

import signal
import subprocess
from typing import Any


def start_interruptible(command: list[str], **options: Any) -> subprocess.Popen[Any]:
    return subprocess.Popen(command, start_new_session=True, preexec_fn=_sigint_as_by_default, **options)


def _sigint_as_by_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
