"""The model under test: one GGUF file and everything learned about it once.

Header, facts, digest and the runtime are made at most once per model per
session, whichever test asks first. The model also holds the caches of the
work done on it (`findings`, `metrics_record`), filled by whoever does that
work (`clauses.registry`, `evaluation.orchestrator`): it is data, it imports
neither, so a check named by several clauses still runs once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .modelfile.facts import ModelFacts, model_facts
from .modelfile.header import GGUFHeader, HeaderError, read_header
from .modelfile.integrity import Digest, DigestCache, ExpectedDigest, Progress, expected_digest, file_identity, file_sha256
from .remote.source import RemoteOrigin
from .runtime.client import DEFAULT_REQUEST_TIMEOUT_S, ModelRuntime, RuntimeNotEvaluated, RuntimeOptions, SpareWorkers
from .runtime.rpc import Placement
from .safety.template_safety import TemplateAssessment, assess_header
from .verdict import Finding

DEFAULT_CTX = 4096


@dataclass(frozen=True)
class EvalOptions:
    """The eval tier's settings: the budget, where the record goes, what to compare it with."""

    budget: str = "standard"
    metrics_path: Path | None = None
    baseline: Path | None = None
    journal_dir: Path | None = None  # where measured items are journaled (pytest's cache), for --dfqs-resume
    resume: bool = False
    allow_unsandboxed_code: bool = False  # run model-written code without OS isolation where the machine offers none
    prompt_mode: str = "few-shot"  # few-shot or chat (the model's template; few-shot when it has none)
    prefix_reuse: bool = True  # each reasoning kind's few-shot exemplars computed once and kept (--dfqs-prefix-reuse)
    sequences: int = 1  # reasoning and HumanEval replies extended together (--dfqs-eval-sequences)


@dataclass(frozen=True)
class TraceOptions:
    """Golden routing traces: where to record this model's trace, and which recorded trace to verify it against."""

    record: Path | None = None
    verify: Path | None = None
    reference: Path | None = None  # a higher-precision GGUF of the same weights, for routing fidelity
    fidelity_plot: Path | None = None  # where the per-layer fidelity plot goes (beside the certificate)


@dataclass
class RemoteWork:
    """What pytest-xdist workers did with a model, as the controller learns it: each worker's latest account."""

    views: dict[str, dict[str, Any]] = field(default_factory=dict)

    def total(self, key: str) -> int:
        return sum(int(view[key]) for view in self.views.values())

    @property
    def sha256(self) -> str | None:
        return next((view["sha256"] for view in self.views.values() if view["sha256"]), None)


@dataclass(frozen=True)
class IntegrityOptions:
    sha256: str | None = None
    checksums: dict[str, str] | None = None
    checksums_source: str = ""
    reference: ExpectedDigest | None = None  # the digest the reference profile expects, when it is in force


class ModelUnderTest:
    def __init__(
        self,
        path: Path,
        label: str,
        integrity: IntegrityOptions = IntegrityOptions(),
        cache: DigestCache | None = None,
        progress: Progress | None = None,
        threads: int = 1,
        ctx: int | None = None,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S,
        announce: Callable[[str], None] = lambda line: None,
        eval_options: EvalOptions = EvalOptions(),
        trace_options: TraceOptions = TraceOptions(),
        origin: RemoteOrigin | None = None,
        rpc: tuple[str, ...] = (),
        tensor_split: tuple[float, ...] = (),
    ) -> None:
        self.path = path
        self.rpc = rpc  # rpc-servers (HOST:PORT) the runtime places the layers on (--dfqs-rpc)
        self.tensor_split = tensor_split  # their shares, and this machine's (--dfqs-tensor-split)
        self.origin = origin  # a remote model's URL and what its header cost: only its header is on this machine
        self.label = label
        self.integrity = integrity
        self.threads = threads
        self.announce = announce  # a progress line for work that takes long
        self._ctx = ctx
        self._request_timeout = request_timeout
        self._cache = cache
        self._progress = progress
        self._runtime: ModelRuntime | None = None
        self._placement: dict[str, Any] | None = None  # where an unloaded runtime had placed the layers (rpc-servers)
        self.eval_options = eval_options
        self.trace_options = trace_options
        self._remote = RemoteWork()  # what xdist workers did with this model
        self._unloaded: list[dict[str, Any]] = []  # accounts of the workers stopped to free memory
        self.benchmark: Any = None  # pytest-benchmark's fixture, when the eval tier's test has it
        self.findings: dict[str, Finding] = {}  # check id -> finding, filled by clauses.registry
        self.metrics_record: dict[str, Any] | None = None  # filled by evaluation.orchestrator
        self.planned_vocabulary: Any = None  # the work plan's texts in the model's tokens, filled by workplan
        self.check_journal: Any = None  # the runtime checks' journal, opened by clauses.registry
        self._header: GGUFHeader | HeaderError | None = None
        self._templates: tuple[TemplateAssessment, ...] | None = None
        self._digest: Digest | None = (
            None if origin is None or origin.sha256 is None else Digest(origin.sha256, origin.received, not origin.received)
        )
        self.identity = file_identity(path) if path.is_file() else None  # to tell, at the end, whether the file changed

    def header(self) -> GGUFHeader:
        """The parsed header; raises the same HeaderError on every call for a bad file."""
        if self._header is None:
            try:
                self._header = read_header(self.path)
            except HeaderError as error:
                self._header = error
        if isinstance(self._header, HeaderError):
            raise self._header
        return self._header

    def header_readable(self) -> bool:
        try:
            self.header()
        except HeaderError:
            return False
        return True

    def templates(self) -> tuple[TemplateAssessment, ...]:
        """Every chat template of the header, its code read and its conversations rendered in the sandbox (once)."""
        if self._templates is None:
            self._templates = assess_header(self.header())
        return self._templates

    def facts(self) -> ModelFacts:
        return model_facts(self.header())

    def expected_digest(self) -> ExpectedDigest | None:
        options = self.integrity
        return expected_digest(self.path, options.sha256, options.checksums, options.checksums_source, options.reference)

    def bytes_not_here(self) -> str | None:
        """Why the file's bytes cannot be read here (only a remote model's header was fetched), or None."""
        if self.origin is None or self.origin.downloaded:
            return None
        return (
            f"only the header of {self.path.name} is on this machine (fetched from {self.origin.url}):"
            " --dfqs-download brings the whole file (resumable, hashed as it streams)"
        )

    def digest(self) -> Digest:
        not_here = self.bytes_not_here()
        if not_here is not None:
            raise RuntimeNotEvaluated(f"the file's bytes are needed and {not_here}")
        if self._digest is None:
            self._digest = file_sha256(self.path, self._cache, self._progress)
        return self._digest

    @property
    def sha256(self) -> str | None:
        """The digest if it was computed in this session (here or by an xdist worker), without computing it."""
        return self._digest.sha256 if self._digest else self._remote.sha256

    def worker_view(self) -> dict[str, Any]:
        """What an xdist worker tells the controller about this model."""
        runtime = self._runtime
        counts = (runtime.workers_started, runtime.loads_requested, runtime.requests_made) if runtime else (0, 0, 0)
        before = self._unloaded
        return {
            "workers_started": counts[0] + sum(view["workers_started"] for view in before),
            "loads": counts[1] + sum(view["loads"] for view in before),
            "requests": counts[2] + sum(view["requests"] for view in before),
            "sha256": self.sha256,
        }

    def absorb(self, worker: str, view: dict[str, Any]) -> None:
        """What xdist worker `worker` has done with this model so far (its accounts grow: the latest replaces the last)."""
        self._remote.views[worker] = view

    def runtime_options(self) -> RuntimeOptions:
        """Threads and context of the runtime tier; the context defaults to 4,096, at most the declared one."""
        facts = self.facts()
        declared = facts.context_length or DEFAULT_CTX
        placement = Placement(self.rpc, self.tensor_split, facts.block_count)
        return RuntimeOptions(
            self.threads,
            self._ctx or min(DEFAULT_CTX, declared),
            self._request_timeout,
            placement,
            self.eval_options.prefix_reuse,
            self.eval_options.sequences,
        )

    def runtime(self) -> ModelRuntime:
        """The model's llama.cpp worker, created on first use (it loads the model once)."""
        if self._runtime is None:
            self._runtime = ModelRuntime(
                self.path,
                self.runtime_options(),
                announce=lambda line: self.announce(f"{self.label}: {line}"),
                not_here=self.bytes_not_here(),
            )
        return self._runtime

    def begin_judging(self, spares: SpareWorkers | None = None) -> None:
        """Have llama.cpp start judging the header now, while pytest goes on (only a header the reader accepts reaches it)."""
        if self.header_readable():
            self.runtime().begin_judging(spares)

    def runtime_record(self) -> dict[str, Any]:
        """What the certificate says of the runtime: its settings, how often the model was loaded and asked."""
        options = self.runtime_options()
        here = self.worker_view()
        placement = self._runtime.placement_record() if self._runtime is not None else self._placement
        return ({"rpc": list(self.rpc), "placement": placement} if self.rpc else {}) | {
            "threads": options.threads,
            "ctx": options.ctx,
            "workers_started": here["workers_started"] + self._remote.total("workers_started"),
            "loads": here["loads"] + self._remote.total("loads"),
            "requests": here["requests"] + self._remote.total("requests"),
        }

    def unload(self) -> None:
        """Stop the model's worker and free its memory; the next request loads the model again (and is counted)."""
        runtime = self._runtime
        if runtime is not None:
            self._unloaded.append(
                {"workers_started": runtime.workers_started, "loads": runtime.loads_requested, "requests": runtime.requests_made}
            )
            self._placement = runtime.placement_record()
            runtime.close()
            self._runtime = None

    def stop(self) -> None:
        """The tests are over: the worker may exit now, its memory freed while pytest reports (`close` waits for it)."""
        if self._runtime is not None:
            self._runtime.stop()

    def close(self) -> None:
        if self._runtime is not None:
            self._runtime.close()
