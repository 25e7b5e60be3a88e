"""How much slower this machine is now than the quiet 2-core machine the suite's time limits were set on.

A limit that passed there in 3 minutes fails a loaded or a slower machine at a fixed 600 s. The suite's limits are
therefore multiplied by `slowdown()`: the larger of two probes' times against their times on the quiet machine, never
below 1:

- a fixed piece of Python, for the interpreter's own work;
- a fixed llama.cpp run at the tests' 2 threads (a 64-token prompt and 16 decoded tokens of a generated 12-layer
  model), in a process of its own: with other work on the cores llama.cpp's spinning thread pool slows down far more
  than Python does (two busy loops on the 2 cores: the Python probe x2, this probe x4.5, a quick eval run of SmolLM2
  x3.8).

Measured when first asked and again once the last measurement is REMEASURE_S old, so load that starts during a run
lengthens the limits of the tests after it; `DFQS_TESTS_SLOWDOWN=4` sets the factor instead of measuring it. Run as a
script, it prints the llama.cpp probe's seconds for a model file.
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

QUIET_PYTHON_S = 0.30  # the Python probe's time on the quiet machine the limits were set on (2 cores, 2026-12)
QUIET_LLAMA_S = 0.125  # the llama.cpp probe's median there
REMEASURE_S = 300.0
SET_BY = "DFQS_TESTS_SLOWDOWN"  # the environment variable that sets the factor
PROBE_THREADS = 2  # as the tests' `--dfqs-threads=2`
PROBE_RUNS = 3
PROMPT_TOKENS, DECODED_TOKENS = 64, 16


@dataclass
class _Measurement:
    taken_at: float = float("-inf")  # time.monotonic()
    factor: float = 1.0


_LAST = _Measurement()


def slowdown() -> float:
    """This machine's slowdown now: measured again when the last measurement is older than REMEASURE_S."""
    if os.environ.get(SET_BY):
        return float(os.environ[SET_BY])
    if time.monotonic() - _LAST.taken_at > REMEASURE_S:
        _LAST.factor = max(1.0, _python_seconds() / QUIET_PYTHON_S, _llama_seconds() / QUIET_LLAMA_S)
        _LAST.taken_at = time.monotonic()
    return _LAST.factor


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


def _llama_seconds() -> float:
    """The llama.cpp probe's median time, from a process of its own."""
    command = [sys.executable, __file__, str(_probe_model())]
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


def _probe(path: str) -> dict[str, float]:
    from llama_cpp import Llama

    llm = Llama(model_path=path, n_ctx=256, n_threads=PROBE_THREADS, n_threads_batch=PROBE_THREADS, n_gpu_layers=0, verbose=False)
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
    print(json.dumps(_probe(sys.argv[1])))
