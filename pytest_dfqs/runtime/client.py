"""The runtime tier's link to llama.cpp: one isolated worker per model.

`ModelRuntime` starts the worker process, has llama.cpp judge the file and plan
its memory in a dry run (the hyperparameters, vocabulary and every tensor read,
the graph built, no weight read, nothing allocated), checks memory, then loads
the model once; every runtime check of that model talks to
the same worker. The model is loaded through a folder that holds nothing but a
link to it, so llama.cpp cannot pick up other shards: what it runs is this one
file alone.

Whatever stops the runtime from answering becomes a `RuntimeUnavailable` with
the status the affected checks report. The model's fault is NOT MET: llama.cpp
refusing the file, or aborting or crashing while it loads it, quoted from
llama.cpp's log (its load error or its GGML_ASSERT line). Not enough memory is
NOT EVALUATED. The tool's own failures are ERROR: no llama-cpp-python, a worker
that cannot start, our own time limit, a worker that died after the load.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import IO, Any, cast

from pytest_dfqs.modelfile.units import human_gib
from pytest_dfqs.verdict import Status

from .host import available_memory
from .preflight import PROJECTION_CONTEXTS, MemoryPlan, memory_plan, projection
from .rpc import Placement, RpcEndpointError, hello, layers_per_device, parse_endpoints
from .shared_prefix import SLOTS

LOG_TAIL_LINES = 12
PROGRESS_PREFIX = "dfqs-progress: "  # the worker's progress lines in its log (runtime.worker)
PROGRESS_POLL_S = 5.0
KILL_GRACE_S = 1.0  # SIGTERM, then SIGKILL: an interrupted run stops its worker within 2 s
DEFAULT_REQUEST_TIMEOUT_S = 3600  # one llama.cpp request (a load, a fill, a measurement); --dfqs-request-timeout
GENERATION_PROMPT = (
    "A mixture-of-experts model routes every token to a few of its experts. "
    "Explain, in plain words, why that keeps the cost of each token low:"
)  # the standard prompt of the CPU, GPU and throughput measurements
BATCH = 512
NODE_PROBE_TIMEOUT_S = 5  # how long an rpc-server may take to answer HELLO once the worker failed
PLANNED_SEQUENCES = 4  # the most sequences one batch of a run holds (routing traces decode 3 prompts together)
CRASH_SIGNALS = (signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL)
COMPLAINT = re.compile(
    r"error loading model: (?P<error>.+)"
    r"|(?:\S*/)?(?P<assertion>[^/\s]+:\d+: GGML_ASSERT\(.*\) failed)"
    r"|(?P<message>(?:key not found in model|failed to load|invalid|unknown model architecture)\b.*)"
)


@dataclass(frozen=True)
class RuntimeOptions:
    """How the runtime tier runs a model; recorded with every runtime finding."""

    threads: int
    ctx: int
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S
    placement: Placement = Placement()  # where the layers go: this machine's CPU, or rpc-servers (--dfqs-rpc)
    prefix_reuse: bool = True  # a completion's declared prefix is computed once and kept (runtime.prompt_cache)
    sequences: int = 1  # independent completions extended together (runtime.continuous_batch)


@dataclass(frozen=True)
class Ask:
    """One greedy completion asked for (`ModelRuntime.complete`'s arguments)."""

    prompt: str
    max_tokens: int
    stop: list[str]
    end: str | None = None
    prefix: str | None = None


@dataclass(frozen=True)
class Completion:
    """A greedy completion: its text and how it ended (eog, stop, end, or budget: the token budget ran out first)."""

    text: str
    ended: str
    tokens: int
    prompt_tokens: int = 0
    reused_tokens: int = 0  # of the prompt's tokens, those of its prefix a slot held already (not decoded again)
    ids: tuple[int, ...] = ()  # the tokens produced
    gaps: tuple[float, ...] = ()  # the top-2 logit gap of each greedy choice (one more than ids at an eog)


class RuntimeUnavailable(Exception):
    """The runtime could not answer; `status` is what the affected check reports, `evidence` what it records."""

    status = Status.ERROR

    def __init__(self, message: str, evidence: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.evidence = evidence or {}


class RuntimeNotEvaluated(RuntimeUnavailable):
    status = Status.NOT_EVALUATED


class ModelRejected(RuntimeUnavailable):
    status = Status.NOT_MET


class WorkerFailed(RuntimeUnavailable):
    """The worker died or fell silent; `crash_signal` says whether llama.cpp crashed it."""

    status = Status.ERROR

    def __init__(self, message: str, crash_signal: signal.Signals | None = None, complaint: str | None = None) -> None:
        super().__init__(message)
        self.crash_signal = crash_signal
        self.complaint = complaint


class NodeFailed(WorkerFailed):
    """An rpc-server the model was placed on died or stalled: the infrastructure failed, not the model (ERROR)."""


class WorkerUnavailable(WorkerFailed):
    """No worker could be had: llama-cpp-python is not installed, or the worker died before llama.cpp was imported."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message  # one line: why llama.cpp cannot judge here


class RequestFailed(RuntimeUnavailable):
    """The worker is alive but could not do what was asked."""

    def __init__(self, error: str, log_tail: str, complaint: str | None = None) -> None:
        super().__init__(f"{error}; llama.cpp's log ends:\n{log_tail}")
        self.error = error
        self.log_tail = log_tail
        self.complaint = complaint


def installed_llama_cpp_python() -> str:
    """The llama-cpp-python the worker imports: the one installed beside pytest (the worker runs the same interpreter)."""
    try:
        return metadata.version("llama_cpp_python")
    except metadata.PackageNotFoundError:  # a build on the path, not installed
        return "unknown"


def log_tail(log: str) -> str:
    """The last lines of llama.cpp's log, indented for a finding's message."""
    lines = deque(log.splitlines(), maxlen=LOG_TAIL_LINES)
    return "\n".join(f"    {line}" for line in lines) or "    (empty)"


def llama_complaint(log: str) -> str | None:
    """llama.cpp's own sentence for why it stopped: its last load error or assertion, else its last other complaint."""
    found: dict[str, str] = {}
    for line in log.splitlines():
        match = COMPLAINT.search(line)
        if match:
            found.update({name: text.strip() for name, text in match.groupdict().items() if text})
    return found.get("assertion") or found.get("error") or found.get("message")


class WorkerProcess:
    """The worker process and its JSON-lines protocol, with a log kept on disk."""

    def __init__(self) -> None:
        self.request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S  # the runtime that takes the worker sets its own
        self.progress: Callable[[str], None] | None = None  # where the worker's progress lines go while a request waits
        self._progress_seen = 0  # where in the log the last progress line was read
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
            start_new_session=True,  # its own process group: Ctrl-C reaches pytest, which stops the worker itself
        )
        self._requests = cast(IO[bytes], self.process.stdin)  # both exist: stdin and stdout are pipes
        self._answers = cast(IO[bytes], self.process.stdout)
        self._buffer = b""

    def request(self, op: str, **args: Any) -> Any:
        """Send one request and wait for its answer; a dead or silent worker raises WorkerFailed."""
        self.send(op, **args)
        return self.receive(op)

    def send(self, op: str, **args: Any) -> None:
        """Queue one request: the worker takes it once it is ready and free (requests are answered in order)."""
        try:
            self._requests.write((json.dumps({"op": op, "args": args}) + "\n").encode())
            self._requests.flush()
        except (BrokenPipeError, OSError):
            raise self._death(op) from None

    def receive(self, op: str) -> Any:
        """The answer to the oldest request not yet answered."""
        try:
            line = self._read_line(op, self.request_timeout)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM while llama.cpp works: stop it now, not after an hour-long fill
            self.kill()
            raise
        answer = json.loads(line)
        if not answer["ok"]:
            log = self.log_text()
            raise RequestFailed(answer["error"], log_tail(log), llama_complaint(log))
        return answer["result"]

    def _read_line(self, op: str, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self._answers, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.kill()
                    raise WorkerFailed(
                        f"the llama.cpp worker gave no answer to {op!r} within {timeout:.0f} s (--dfqs-request-timeout) and was stopped"
                    )
                if not selector.select(min(remaining, PROGRESS_POLL_S)):
                    self._pass_on_progress(op)
                    continue
                chunk = os.read(self._answers.fileno(), 1 << 16)
                if not chunk:
                    raise self._death(op)
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def wait_ready(self) -> None:
        """The worker's first line says llama.cpp is imported; a worker that dies or stays silent first could not start."""
        try:
            line = self._read_line("start", self.request_timeout)
        except WorkerFailed as failure:
            last = self.log_text().strip().splitlines()
            reason = f"the llama.cpp worker could not start ({last[-1] if last else 'no message'})"
            raise WorkerUnavailable(f"{reason}: {failure}", reason) from None
        try:
            ready = json.loads(line)["ready"] is True
        except (ValueError, KeyError, TypeError):
            ready = False
        if not ready:  # something printed before the worker took over its output
            raise WorkerUnavailable(f"the llama.cpp worker could not start (its first line is not its ready line: {line[:80]!r})") from None

    def _pass_on_progress(self, op: str) -> None:
        """The worker's latest progress line since the last one, as a progress line of the run."""
        if self.progress is None:
            return
        self._log_handle.flush()
        with self.log.open("rb") as log:
            log.seek(self._progress_seen)
            fresh = log.read()
        self._progress_seen += len(fresh)
        lines = [line for line in fresh.decode("utf-8", "replace").splitlines() if line.startswith(PROGRESS_PREFIX)]
        if lines:
            self.progress(f"{op}: {lines[-1].removeprefix(PROGRESS_PREFIX)}")

    def _death(self, op: str) -> WorkerFailed:
        code = self.process.wait()
        crash = signal.Signals(-code) if code < 0 else None
        cause = f"signal {crash.name}" if crash else f"exit status {code}"
        log = self.log_text()
        message = f"the llama.cpp worker died with {cause} during {op!r}; llama.cpp's log ends:\n{log_tail(log)}"
        return WorkerFailed(message, crash if crash in CRASH_SIGNALS else None, llama_complaint(log))

    def log_text(self) -> str:
        self._log_handle.flush()
        return self.log.read_text(errors="replace")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """Stop the worker and anything it started: its process group gets SIGTERM, then SIGKILL after KILL_GRACE_S."""
        if not self.alive:
            return
        self._signal_group(signal.SIGTERM)
        try:
            self.process.wait(timeout=KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.process.wait()

    def _signal_group(self, signum: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if hasattr(os, "killpg"):
                os.killpg(self.process.pid, signum)
            else:
                self.process.send_signal(signum)

    def stop(self) -> None:
        """Ask the worker to exit, without waiting for it (`close` waits)."""
        if self.alive and not self._requests.closed:
            with contextlib.suppress(OSError):
                self._requests.write(b'{"op": "shutdown"}\n')
                self._requests.close()

    def close(self) -> None:
        self.stop()
        if self.alive:
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log_handle.close()
        self.log.unlink(missing_ok=True)


class SpareWorkers:
    """llama.cpp workers started as soon as pytest has parsed its options, before the plugin's own start-up (its settings,
    the clause catalogue, the model's header): the time a worker takes to import llama.cpp overlaps it. A worker is no
    model's until a runtime takes it; those nobody took are closed."""

    def __init__(self, count: int) -> None:
        self._workers = [WorkerProcess() for _ in range(count)] if find_spec("llama_cpp") is not None else []

    def take(self) -> WorkerProcess | None:
        return self._workers.pop() if self._workers else None

    def close(self) -> None:
        while self._workers:
            self._workers.pop().close()


class ModelRuntime:
    """The runtime of one model: preflight, one worker, one load, then requests."""

    def __init__(
        self,
        path: Path,
        options: RuntimeOptions,
        n_gpu_layers: int = 0,
        announce: Callable[[str], None] | None = None,
        not_here: str | None = None,
    ) -> None:
        self.path = path
        self.not_here = not_here  # why the weights cannot be loaded here (a remote model's header only): the dry run still can
        self.announce = announce  # progress lines of long requests
        self.options = options
        self.n_gpu_layers = n_gpu_layers  # 0: CPU only, as the runtime tier requires; -1: offload all
        self.plans: dict[tuple[int, int], MemoryPlan] = {}
        self.identity: dict[str, Any] | None = None  # what llama.cpp's dry run calls the model: description, parameters, layers, vocabulary
        self._queued: tuple[int, int] | None = None  # the dry run begin_judging asked for, not yet collected
        self.llama_cpp_python: str | None = None  # the worker's llama-cpp-python, once it started
        self._worker: WorkerProcess | None = None
        self._loaded: dict[str, Any] | None = None
        self._failure: RuntimeUnavailable | None = None
        self._alone: Path | None = None
        self.workers_started = 0
        self.loads_requested = 0
        self.requests_made = 0  # requests to the loaded model: what a resumed evaluation saves

    def loaded(self) -> dict[str, Any]:
        """What the load reported; starts the worker and loads on first use, once."""
        if self._failure is not None:
            raise self._again(self._failure)
        if self._loaded is None:
            try:
                self._loaded = self._start()
            except RuntimeUnavailable as failure:
                self._failure = failure
                raise
        return self._loaded

    @staticmethod
    def _again(failure: RuntimeUnavailable) -> RuntimeUnavailable:
        """The first failure, for every later check that asks: a rejection is the model's verdict, word for word."""
        repeated = type(failure)(str(failure) if isinstance(failure, ModelRejected) else f"could not run: {failure}")
        repeated.__dict__.update(failure.__dict__)  # its evidence, and what its kind says of it (a reason, a signal)
        return repeated

    def _start(self) -> dict[str, Any]:
        if self.not_here is not None:
            raise RuntimeNotEvaluated(f"llama.cpp needs the weights and {self.not_here}")
        self.preflight(self.options.ctx)
        self.loads_requested += 1
        worker = self._started()
        placement = self.options.placement.worker_args()
        path = str(self.alone_path())
        loaded = self._load(lambda: worker.request("load", path=path, n_gpu_layers=self.n_gpu_layers, placement=placement))
        return {**loaded, "llama_cpp_python": self.llama_cpp_python}

    def judged(self) -> MemoryPlan:
        """llama.cpp's verdict on the file before a weight is read, once: its dry run (the hyperparameters and vocabulary
        read, every key and tensor checked, the graph of a context at the runtime's size built, nothing allocated); the plan.

        A refusal, a crash or a worker that could not be had is remembered: every later request meets it again.
        """
        if isinstance(self._failure, (ModelRejected, WorkerFailed)):
            raise self._again(self._failure)
        try:
            return self.plan(self.options.ctx)
        except RuntimeUnavailable as failure:
            self._failure = failure
            raise

    def begin_judging(self, spares: SpareWorkers | None = None) -> None:
        """Start the worker (or take a spare one, started already) and queue the dry run `judged` asks for now, so
        llama.cpp works while pytest goes on."""
        if self._worker is not None or find_spec("llama_cpp") is None or self.options.ctx > PROJECTION_CONTEXTS[1]:
            return
        worker = self._spawned(spares.take() if spares is not None else None)
        try:
            worker.send("plan_memory", **self._dry_run_args(self.options.ctx, BATCH))
        except WorkerFailed:
            return  # it died already: `judged` finds out how, when it is asked
        self._queued = (self.options.ctx, BATCH)

    def _spawned(self, spare: WorkerProcess | None = None) -> WorkerProcess:
        if self._worker is None:
            worker = spare or WorkerProcess()
            worker.request_timeout, worker.progress = self.options.request_timeout, self.announce
            self._worker = worker
            self.workers_started += 1
        return self._worker

    def _started(self) -> WorkerProcess:
        """The worker, started on first use; one that cannot start (llama.cpp not importable) is WorkerUnavailable."""
        if find_spec("llama_cpp") is None:
            reason = "llama-cpp-python is not installed"
            raise WorkerUnavailable(f"{reason}: pip install 'pytest-dfqs[runtime]'", reason)
        worker = self._spawned()
        if self.llama_cpp_python is None:
            worker.wait_ready()
            self.llama_cpp_python = installed_llama_cpp_python()
        return worker

    def plan(self, n_ctx: int, n_batch: int = BATCH) -> MemoryPlan:
        """What a context of `n_ctx` tokens needs with this model: projected first when long, then llama.cpp's dry run."""
        short, long = PROJECTION_CONTEXTS
        if n_ctx > long:
            projected = projection(self._dry_run(short, n_batch), self._dry_run(long, n_batch), n_ctx)
            if projected.shortfalls(available_memory()):
                return projected  # a dry run at n_ctx would itself need much of that memory
        return self._dry_run(n_ctx, n_batch)

    def _dry_run(self, n_ctx: int, n_batch: int) -> MemoryPlan:
        """llama.cpp's dry run of a context of `n_ctx` tokens in the worker, once per setting."""
        key = (n_ctx, n_batch)
        if key not in self.plans:
            worker = self._started()
            if self._queued == key:  # begin_judging asked for it already
                self._queued = None
                dry_run = self._load(lambda: worker.receive("plan_memory"))
            else:
                dry_run = self._load(lambda: worker.request("plan_memory", **self._dry_run_args(n_ctx, n_batch)))
            self.plans[key] = memory_plan(dry_run, n_ctx, n_batch)
            self.identity = {name: dry_run[name] for name in ("description", "n_params", "n_layer", "n_vocab")}
        return self.plans[key]

    def _dry_run_args(self, n_ctx: int, n_batch: int) -> dict[str, Any]:
        return {
            "path": str(self.alone_path()),
            "n_ctx": n_ctx,
            "n_batch": n_batch,
            "n_ubatch": BATCH,
            "n_seq": PLANNED_SEQUENCES if self.options.sequences == 1 else max(PLANNED_SEQUENCES, self.options.sequences + SLOTS),
            "placement": self.options.placement.worker_args(),
        }

    def preflight(self, n_ctx: int, n_batch: int = BATCH, advice: str = "lower --dfqs-ctx or free memory") -> None:
        """NOT EVALUATED, with the plan and what the machine (and each rpc-server) offers, when a context of `n_ctx`
        tokens cannot fit."""
        plan, available = self.plan(n_ctx, n_batch), available_memory()
        evidence = {"memory_preflight": plan.evidence(available)}
        if not plan.nodes:
            if plan.total > available:
                raise RuntimeNotEvaluated(
                    f"a context of {n_ctx:,} tokens needs about {human_gib(plan.total)}, {human_gib(available)} available"
                    f" ({plan.describe()}); {advice}",
                    evidence,
                )
            return
        short = plan.shortfalls(available)
        if short:
            raise RuntimeNotEvaluated(
                f"a context of {n_ctx:,} tokens does not fit: {'; '.join(short)} (this machine: {plan.describe()});"
                f" {advice}, or share the layers otherwise (--dfqs-tensor-split)",
                evidence,
            )

    def _load(self, answer: Callable[[], Any]) -> dict[str, Any]:
        """A load's (or dry run's) answer from the worker; llama.cpp refusing or crashing on the file is the model's
        fault (NOT MET), unless an rpc-server it was placed on failed."""
        try:
            loaded: dict[str, Any] = answer()
        except RequestFailed as failure:
            quote = failure.complaint or failure.error
            raise ModelRejected(f"llama.cpp refuses to load this model: {quote}\nllama.cpp's log ends:\n{failure.log_tail}") from None
        except WorkerFailed as failure:
            failure = self._blamed(failure)
            if failure.crash_signal is None:
                raise  # killed from outside (the OOM killer, our time limit) or could not start: not the model's doing
            quote = failure.complaint or "no message in its log"
            raise ModelRejected(f"llama.cpp aborted ({failure.crash_signal.name}) loading this model: {quote}\n{failure}") from None
        return loaded

    def alone_path(self) -> Path:
        """The model seen from a folder holding only a link to it: llama.cpp finds no other shard there."""
        if self._alone is None:
            folder = Path(tempfile.mkdtemp(prefix="dfqs-alone-"))
            self._alone = folder / self.path.name
            try:
                self._alone.symlink_to(self.path.resolve())
            except OSError:  # no symlinks here: load the file where it is
                shutil.rmtree(folder, ignore_errors=True)
                self._alone = self.path
        return self._alone

    @property
    def where(self) -> str:
        """Where the model runs, as a finding says it."""
        endpoints = self.options.placement.endpoints
        return f"over the rpc-servers {', '.join(endpoints)}" if endpoints else "on the CPU"

    @property
    def backend(self) -> str:
        placement = self.options.placement
        if placement.endpoints:
            return f"RPC (llama.cpp, {placement.describe()}; n_gpu_layers = {placement.offloaded_layers()})"
        return "CPU (llama.cpp, n_gpu_layers = 0)"

    def placement_record(self) -> dict[str, Any] | None:
        """Where the loaded model's layers are (None: this machine's CPU alone): the endpoints and the split asked
        for, each server's devices and memory, the layers llama.cpp assigned to each, what the preflight planned."""
        placement = self.options.placement
        if not placement.endpoints:
            return None
        record = placement.record()
        if self._loaded is not None:
            record["devices"] = self._loaded["rpc_devices"]
            record["layers"] = layers_per_device(self._loaded["lines"], self._loaded["rpc_devices"])
        plan = self.plans.get((self.options.ctx, BATCH))
        if plan is not None:
            record["planned"] = [node.evidence() for node in plan.nodes]
        return record

    def planned_tokens(self, texts: dict[str, list[str]], conversations: dict[str, list[list[dict[str, str]]]]) -> dict[str, Any]:
        """The work plan's prompts in the model's own tokens (`ModelWorker.planned_tokens`), before the model is loaded:
        llama.cpp judges the header first, so a file it refuses is never tokenized; a worker that fails doing it is
        stopped (the load starts another)."""
        self.judged()
        worker = self._started()
        try:
            answer: dict[str, Any] = worker.request("planned_tokens", path=str(self.alone_path()), texts=texts, conversations=conversations)
        except WorkerFailed:
            worker.close()
            self._worker = None
            raise
        return answer

    def prompt_timing(self, tokens: list[int], decoded: int) -> tuple[float, float]:
        """Seconds the loaded model takes for `tokens` as one batch, and per token for `decoded` more decoded one at a
        time after them (`ModelWorker.prompt_timing`)."""
        batch, per_decoded = self.request("prompt_timing", tokens=tokens, decoded=decoded, n_threads=self.options.threads)
        return float(batch), float(per_decoded)

    def request(self, op: str, **args: Any) -> Any:
        self.loaded()
        self.requests_made += 1
        worker = self._worker
        assert worker is not None  # loaded() started it or raised
        try:
            return worker.request(op, **args)
        except WorkerFailed as failure:
            self._failure = self._blamed(failure)
            raise self._failure from None

    def _blamed(self, failure: WorkerFailed) -> WorkerFailed:
        """The failure, put on the rpc-servers that no longer answer the protocol's HELLO when there are any: a node
        that died or stalls is the infrastructure's fault; the worker is stopped (it waits on them otherwise)."""
        endpoints = self.options.placement.endpoints
        if not endpoints or isinstance(failure, NodeFailed):
            return failure
        silent = []
        for endpoint in parse_endpoints(",".join(endpoints)):
            try:
                hello(endpoint, min(NODE_PROBE_TIMEOUT_S, self.options.request_timeout))
            except RpcEndpointError as error:
                silent.append(str(error))
        if not silent:
            return failure
        if self._worker is not None:
            self._worker.kill()
        first_line = str(failure).split("\n")[0]
        return NodeFailed(
            f"an rpc-server the model is placed on failed (the infrastructure, not the model): {'; '.join(silent)} ({first_line})"
        )

    def generate(self, prompt: str, n_predict: int, **overrides: Any) -> dict[str, Any]:
        """One untraced greedy run at the runtime's threads and context."""
        args = {"n_ctx": self.options.ctx, "n_threads": self.options.threads, "n_batch": BATCH, "n_ubatch": BATCH, "trace": False}
        run: dict[str, Any] = self.request("evaluate", prompts=[prompt], n_predict=n_predict, **{**args, **overrides})
        return run

    def complete(self, prompt: str, max_tokens: int, stop: list[str], end: str | None = None, prefix: str | None = None) -> Completion:
        """Greedy completion of `prompt` at the runtime's threads and context: cut before the first stop string, or
        kept up to the `end` pattern's first match; how it ended says whether the token budget cut it short. A `prefix`
        the prompt begins with, shared by other prompts, is computed once and kept when prefix reuse is on."""
        options = self.options
        reply = self.request(
            "complete",
            prompt=prompt,
            max_tokens=max_tokens,
            stop=stop,
            end=end,
            n_ctx=options.ctx,
            n_threads=options.threads,
            reuse=options.prefix_reuse,
            prefix=prefix,
        )
        return _completion(reply)

    def complete_many(self, asks: list[Ask]) -> list[Completion]:
        """`complete` for each, in order: one at a time at `sequences` 1, else that many extended together, a finished
        reply making room for the next (`runtime.continuous_batch`)."""
        options = self.options
        if options.sequences == 1:
            return [self.complete(ask.prompt, ask.max_tokens, ask.stop, ask.end, ask.prefix) for ask in asks]
        replies = self.request(
            "complete_many",
            requests=[dataclasses.asdict(ask) for ask in asks],
            n_ctx=options.ctx,
            n_threads=options.threads,
            sequences=options.sequences,
            reuse=options.prefix_reuse,
        )
        return [_completion(reply) for reply in replies]

    def render_chat(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The conversation, ready for the reply, as llama.cpp's built-in templates render the model's chat template (no
        Jinja runs): "template" False without one, "text" None when llama.cpp does not recognize it, "form" the built-in's name."""
        rendered: dict[str, Any] = self.request("render_chat", messages=messages)
        return rendered

    def stop(self) -> None:
        """Let the worker go (it exits at once); `close` then waits for it."""
        if self._worker is not None:
            self._worker.stop()

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()
        if self._alone is not None and self._alone != self.path:
            shutil.rmtree(self._alone.parent, ignore_errors=True)


def _completion(reply: dict[str, Any]) -> Completion:
    return Completion(
        str(reply["text"]),
        str(reply["ended"]),
        int(reply["tokens"]),
        prompt_tokens=int(reply["prompt_tokens"]),
        reused_tokens=int(reply["reused_tokens"]),
        ids=tuple(int(token) for token in reply["ids"]),
        gaps=tuple(float(gap) for gap in reply["gaps"]),
    )


def throughput(run: dict[str, Any]) -> dict[str, float]:
    """Prompt and decode tokens per second of one `generate` run."""
    prompt_tokens = len(run["prompt_tokens"][0])
    decoded = max(len(run["generated"][0]) - 1, 1)  # the first token comes from the prompt's logits
    return {
        "prompt_tokens_per_sec": prompt_tokens / max(run["prompt_seconds"], 1e-9),
        "decode_tokens_per_sec": decoded / max(run["decode_seconds"], 1e-9),
    }
