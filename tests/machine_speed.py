"""How much slower this machine is now than the quiet 2-core machine the suite's time limits were set on, and how many
threads the tests' llama.cpp runs take on it.

Threads: `llama_threads()` is 2, as on the quiet machine, unless other work holds a core; then it is the cores left
free, at least 1. llama.cpp's threads meet at a barrier after every operation; when one of two threads shares its core
with another program, the other waits for it at each barrier while the scheduler hands that core out in millisecond
slices. Beside one busy loop on the 2 cores, a 2-thread four-sequence SmolLM2 test took more than 14 minutes against
59 s quiet; 1 thread decodes SmolLM2 as fast as 2 threads do on the quiet machine less a quarter (79 against 104
tokens/s), and 3 times as fast as 2 threads beside the busy loop (32 tokens/s). Free cores are read from /proc/stat
over half a second (`pytest_dfqs.runtime.host.busy_cores`).

Time limits: a limit that passed on the quiet machine in 3 minutes fails a loaded or a slower machine at a fixed
600 s. The suite's limits are therefore multiplied by `slowdown()`: the larger of two probes' times against their
times on the quiet machine, never below 1:

- a fixed piece of Python, for the interpreter's own work;
- a fixed llama.cpp run at `llama_threads()` threads (a 64-token prompt and 16 decoded tokens of a generated 12-layer
  model), in a process of its own, against its time at 2 threads on the quiet machine.

Both are measured when first asked and again once the last measurement is REMEASURE_S old, so load that starts during
a run changes the tests after it. `DFQS_TESTS_SLOWDOWN=4` sets the factor and `DFQS_TESTS_THREADS=1` the threads
instead of measuring them. Run as a script, it prints the llama.cpp probe's seconds for a model file and a thread count.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pytest_dfqs.runtime.host import busy_cores, usable_cores

QUIET_PYTHON_S = 0.30  # the Python probe's time on the quiet machine the limits were set on (2 cores, 2026-12)
QUIET_LLAMA_S = 0.125  # the llama.cpp probe's median there
REMEASURE_S = 300.0
SET_BY = "DFQS_TESTS_SLOWDOWN"  # the environment variable that sets the factor
THREADS_SET_BY = "DFQS_TESTS_THREADS"  # and the one that sets the tests' llama.cpp threads
QUIET_THREADS = 2  # the tests' llama.cpp threads on the quiet machine
PROBE_RUNS = 3
PROMPT_TOKENS, DECODED_TOKENS = 64, 16


@dataclass
class _Measurement:
    taken_at: float = float("-inf")  # time.monotonic()
    factor: float = 1.0
    threads: int = QUIET_THREADS


_LAST = _Measurement()


def slowdown() -> float:
    """This machine's slowdown at the last measurement, at `llama_threads()` threads."""
    if os.environ.get(SET_BY):
        return float(os.environ[SET_BY])
    return _measured().factor


def llama_threads() -> int:
    """The threads the tests' llama.cpp runs take: 2, or the cores other work left free (at least 1) at the last
    measurement, so that every run of one test takes the same."""
    return _measured().threads


def measure_if_stale() -> None:
    """Measure again when the last measurement is older than REMEASURE_S: called as each test starts."""
    if time.monotonic() - _LAST.taken_at > REMEASURE_S:
        _measure()


def _measured() -> _Measurement:
    if _LAST.taken_at == float("-inf"):
        _measure()
    return _LAST


def _measure() -> None:
    """Threads first, then the probes at them; a factor set by hand keeps the quiet machine's threads unless they are
    set too."""
    set_by_hand = os.environ.get(SET_BY)
    _LAST.threads = int(os.environ.get(THREADS_SET_BY) or (QUIET_THREADS if set_by_hand else free_cores()))
    if not set_by_hand:
        _LAST.factor = max(1.0, _python_seconds() / QUIET_PYTHON_S, _llama_seconds(_LAST.threads) / QUIET_LLAMA_S)
    _LAST.taken_at = time.monotonic()


def free_cores() -> int:
    """The cores other work leaves free now (this process sleeps while they are read), 1 to QUIET_THREADS."""
    return max(1, min(QUIET_THREADS, round(usable_cores() - busy_cores())))


def scaled(seconds: float) -> float:
    """A time limit set on the quiet machine, for this one now."""
    return seconds * slowdown()


def _python_seconds() -> float:
    """The shortest of three runs of a fixed pure-Python loop."""
    times = []
    for _ in range(3):
        started, total = time.perf_counter(), 0
        for number in range(3_000_000):
            total += number * number % 7
        times.append(time.perf_counter() - started)
    return min(times)


def _llama_seconds(threads: int) -> float:
    """The llama.cpp probe's median time at `threads` threads, from a process of its own."""
    command = [sys.executable, __file__, str(_probe_model()), str(threads)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"tests/machine_speed.py: the llama.cpp speed probe failed (exit {result.returncode}): {result.stderr[-2000:]}")
    return float(json.loads(result.stdout.splitlines()[-1])["median_s"])


@cache
def _probe_model() -> Path:
    """The probe's model, generated once per session in a folder removed at exit."""
    from pytest_dfqs.modelfile.demo import TinyModelSpec, write_model

    folder = Path(tempfile.mkdtemp(prefix="dfqs-machine-speed-"))
    atexit.register(shutil.rmtree, folder, True)
    path = folder / "speed-probe.gguf"
    spec = TinyModelSpec(n_layer=12, n_embd=512, n_head=8, n_head_kv=4, n_ff=1536, n_expert=0, context_length=4096)
    write_model(path, spec, name="speed-probe")
    return path


def _probe(path: str, threads: int) -> dict[str, float]:
    from llama_cpp import Llama

    llm = Llama(model_path=path, n_ctx=256, n_threads=threads, n_threads_batch=threads, n_gpu_layers=0, verbose=False)
    prompt = llm.tokenize(b"the theory of " * PROMPT_TOKENS)[:PROMPT_TOKENS]
    times = []
    for _ in range(PROBE_RUNS):
        llm.reset()
        started = time.perf_counter()
        llm.eval(prompt)
        for _ in range(DECODED_TOKENS):
            llm.eval([int(llm.scores[llm.n_tokens - 1].argmax())])
        times.append(time.perf_counter() - started)
    return {"median_s": statistics.median(times)}


if __name__ == "__main__":
    print(json.dumps(_probe(sys.argv[1], int(sys.argv[2]))))
