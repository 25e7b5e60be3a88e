"""The runtime tier's link to llama.cpp: one isolated worker per model.

`ModelRuntime` checks memory first, then starts the worker process and loads
the model once; every runtime check of that model talks to the same worker.
Whatever stops the runtime from answering becomes a `RuntimeUnavailable` with
the status the affected checks report: not enough memory or no llama.cpp is
NOT EVALUATED, a model llama.cpp refuses is NOT MET, a worker that died is
ERROR with the signal and the last lines of llama.cpp's log.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import IO, Any, cast

from pytest_dfqs.modelfile.header import GGUFHeader
from pytest_dfqs.modelfile.units import human_gib
from pytest_dfqs.verdict import Status

from .host import available_memory
from .preflight import MemoryEstimate, estimate_memory

LOG_TAIL_LINES = 12
REQUEST_TIMEOUT_S = 1800.0
GENERATION_PROMPT = (
    "A mixture-of-experts model routes every token to a few of its experts. "
    "Explain, in plain words, why that keeps the cost of each token low:"
)  # the standard prompt of the CPU, GPU and throughput measurements
BATCH = 512


@dataclass(frozen=True)
class RuntimeOptions:
    """How the runtime tier runs a model; recorded with every runtime finding."""

    threads: int
    ctx: int


class RuntimeUnavailable(Exception):
    """The runtime could not answer; `status` is what the affected check reports."""

    status = Status.ERROR


class RuntimeNotEvaluated(RuntimeUnavailable):
    status = Status.NOT_EVALUATED


class ModelRejected(RuntimeUnavailable):
    status = Status.NOT_MET


class WorkerFailed(RuntimeUnavailable):
    status = Status.ERROR


class RequestFailed(RuntimeUnavailable):
    """The worker is alive but could not do what was asked."""

    def __init__(self, error: str, log_tail: str) -> None:
        super().__init__(f"{error}; llama.cpp's log ends:\n{log_tail}")
        self.error = error


class WorkerProcess:
    """The worker process and its JSON-lines protocol, with a log kept on disk."""

    def __init__(self) -> None:
        handle, name = tempfile.mkstemp(prefix="dfqs-llama-", suffix=".log")
        self.log = Path(name)
        self._log_handle = os.fdopen(handle, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pytest_dfqs.runtime.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_handle,
            bufsize=0,
            env={**os.environ, "GGML_NO_BACKTRACE": "1"},  # an abort leaves its message, not a debugger's backtrace, last
        )
        self._requests = cast(IO[bytes], self.process.stdin)  # both exist: stdin and stdout are pipes
        self._answers = cast(IO[bytes], self.process.stdout)
        self._buffer = b""

    def request(self, op: str, timeout: float = REQUEST_TIMEOUT_S, **args: Any) -> Any:
        """Send one request and wait for its answer; a dead or silent worker raises WorkerFailed."""
        try:
            self._requests.write((json.dumps({"op": op, "args": args}) + "\n").encode())
            self._requests.flush()
        except (BrokenPipeError, OSError):
            raise self._death(op) from None
        answer = json.loads(self._read_line(op, timeout))
        if not answer["ok"]:
            raise RequestFailed(answer["error"], self.log_tail())
        return answer["result"]

    def _read_line(self, op: str, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self._answers, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    self.kill()
                    raise WorkerFailed(f"the llama.cpp worker gave no answer to {op!r} within {timeout:.0f} s and was stopped")
                chunk = os.read(self._answers.fileno(), 1 << 16)
                if not chunk:
                    raise self._death(op)
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _death(self, op: str) -> WorkerFailed:
        code = self.process.wait()
        cause = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        return WorkerFailed(f"the llama.cpp worker died with {cause} during {op!r}; llama.cpp's log ends:\n{self.log_tail()}")

    def log_tail(self) -> str:
        self._log_handle.flush()
        lines = deque(self.log.read_text(errors="replace").splitlines(), maxlen=LOG_TAIL_LINES)
        return "\n".join(f"    {line}" for line in lines) or "    (empty)"

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive:
            self.process.kill()
            self.process.wait()

    def close(self) -> None:
        if self.alive:
            try:
                self._requests.write(b'{"op": "shutdown"}\n')
                self._requests.close()
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        self._log_handle.close()
        self.log.unlink(missing_ok=True)


class ModelRuntime:
    """The runtime of one model: preflight, one worker, one load, then requests."""

    def __init__(self, path: Path, header: GGUFHeader, options: RuntimeOptions, n_gpu_layers: int = 0) -> None:
        self.path = path
        self.header = header
        self.options = options
        self.n_gpu_layers = n_gpu_layers  # 0: CPU only, as the runtime tier requires; -1: offload all
        self.estimate: MemoryEstimate = estimate_memory(header, options.ctx)
        self._worker: WorkerProcess | None = None
        self._loaded: dict[str, Any] | None = None
        self._failure: RuntimeUnavailable | None = None
        self.workers_started = 0
        self.loads_requested = 0

    def loaded(self) -> dict[str, Any]:
        """What the load reported; starts the worker and loads on first use, once."""
        if self._failure is not None:
            raise type(self._failure)(f"could not run: {self._failure}")
        if self._loaded is None:
            try:
                self._loaded = self._start()
            except RuntimeUnavailable as failure:
                self._failure = failure
                raise
        return self._loaded

    def _start(self) -> dict[str, Any]:
        if find_spec("llama_cpp") is None:
            raise RuntimeNotEvaluated("llama-cpp-python is not installed: pip install 'pytest-dfqs[runtime]'")
        available = available_memory()
        if self.estimate.total > available:
            raise RuntimeNotEvaluated(
                f"needs about {human_gib(self.estimate.total)}, {human_gib(available)} available"
                f" ({self.estimate.describe()}); lower --dfqs-ctx or free memory"
            )
        self._worker = WorkerProcess()
        self.workers_started += 1
        self.loads_requested += 1
        try:
            loaded: dict[str, Any] = self._worker.request("load", path=str(self.path), n_gpu_layers=self.n_gpu_layers)
        except RequestFailed as failure:
            raise ModelRejected(f"llama.cpp does not load this model: {failure}") from None
        return loaded

    def request(self, op: str, **args: Any) -> Any:
        self.loaded()
        worker = self._worker
        assert worker is not None  # loaded() started it or raised
        try:
            return worker.request(op, **args)
        except WorkerFailed as failure:
            self._failure = failure
            raise

    def generate(self, prompt: str, n_predict: int, **overrides: Any) -> dict[str, Any]:
        """One untraced greedy run at the runtime's threads and context."""
        args = {"n_ctx": self.options.ctx, "n_threads": self.options.threads, "n_batch": BATCH, "n_ubatch": BATCH, "trace": False}
        run: dict[str, Any] = self.request("evaluate", prompts=[prompt], n_predict=n_predict, **{**args, **overrides})
        return run

    def complete(self, prompt: str, max_tokens: int, stop: list[str]) -> str:
        """Greedy completion text of `prompt`, cut at the first stop string, at the runtime's threads and context."""
        options = self.options
        text: str = self.request("complete", prompt=prompt, max_tokens=max_tokens, stop=stop, n_ctx=options.ctx, n_threads=options.threads)[
            "text"
        ]
        return text

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()


def throughput(run: dict[str, Any]) -> dict[str, float]:
    """Prompt and decode tokens per second of one `generate` run."""
    prompt_tokens = len(run["prompt_tokens"][0])
    decoded = max(len(run["generated"][0]) - 1, 1)  # the first token comes from the prompt's logits
    return {
        "prompt_tokens_per_sec": prompt_tokens / max(run["prompt_seconds"], 1e-9),
        "decode_tokens_per_sec": decoded / max(run["decode_seconds"], 1e-9),
    }
