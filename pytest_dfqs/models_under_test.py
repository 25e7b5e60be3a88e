"""The models under test, set up from validated settings, and llama.cpp asked at once to judge each header.

The plugin builds them before it imports the certification hooks (the clause registry, numpy, the whole of gguf):
llama.cpp's dry run starts as soon as the plugin's own reader has accepted the header, and runs while the rest of
the plugin starts, collects and runs the header's checks.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from .clauses.reference_profile import reference_digest
from .model import EvalOptions, IntegrityOptions, ModelUnderTest, TraceOptions
from .modelfile.integrity import DigestStore, Progress
from .modelfile.units import human_bytes
from .remote.hub import source_of
from .remote.names import is_remote
from .remote.ranges import RemoteError
from .remote.source import RemoteOrigin, remote_header
from .session import model_labels
from .settings import DEMO_MODEL, SPARE_WORKERS, Settings, judges_in_header

PROGRESS_MIN_BYTES = 256 << 20
REMOTE_REQUEST_TIMEOUT_S = 30.0  # one range request; the whole header has --dfqs-header-timeout


def models_under_test(config: pytest.Config, settings: Settings) -> list[ModelUnderTest]:
    """One model under test per --dfqs-model, each closed when pytest ends; llama.cpp judging those it can judge."""
    announce = _announcer(config)
    located = [_located(name, config, settings, announce) for name in settings.models]
    paths = [path for path, _ in located]
    journal_dir = _journal_dir(config, settings.resume)
    reference = reference_digest() if settings.profile == "reference" else None
    integrity = IntegrityOptions(settings.sha256, settings.checksums, str(settings.checksums_path), reference)
    models = [
        ModelUnderTest(
            path,
            label,
            integrity,
            _digest_store(config),
            _progress_printer(announce, path),
            origin=origin,
            threads=settings.threads,
            ctx=settings.ctx,
            request_timeout=settings.request_timeout,
            rpc=settings.rpc,
            tensor_split=settings.tensor_split,
            announce=announce,
            eval_options=EvalOptions(
                settings.eval_budget,
                _per_model_path(settings.metrics, label, len(paths)),
                settings.baseline,
                journal_dir,
                settings.resume,
                settings.allow_unsandboxed_code,
                settings.prompt_mode,
                settings.prefix_reuse,
                settings.eval_sequences,
            ),
            trace_options=TraceOptions(
                _per_model_path(settings.trace_record, label, len(paths)),
                settings.trace,
                settings.reference_model,
                _fidelity_plot(settings.report, label, len(paths)),
            ),
        )
        for (path, origin), label in zip(located, model_labels(paths))
    ]
    for model in models:
        config.add_cleanup(model.close)
    if judges_in_header(config):
        spares = config.stash.get(SPARE_WORKERS, None)
        for model in models:
            model.begin_judging(spares)
    return models


def _cache_folder(config: pytest.Config, name: str) -> Path | None:
    """A folder of pytest's cache (.pytest_cache/d/NAME); None when the cache provider is disabled."""
    cache = getattr(config, "cache", None)
    return cache.mkdir(name) if cache is not None else None


def _scratch_folder(config: pytest.Config, name: str) -> Path:
    """pytest's cache folder NAME or, with the cache provider disabled, NAME in this user's own folder of the temporary
    directory: never a folder another user could have made, where a planted file would be certified as the demo."""
    folder = _cache_folder(config, name)
    if folder is not None:
        return folder
    mine = Path(tempfile.gettempdir()) / f"pytest-dfqs-of-{os.getuid()}"
    try:
        mine.mkdir(mode=0o700, exist_ok=True)
        status = mine.lstat()
    except OSError as error:
        raise pytest.UsageError(f"cannot make {mine} ({error.strerror}): point TMPDIR at a folder of yours") from None
    if stat.S_ISLNK(status.st_mode) or status.st_uid != os.getuid() or status.st_mode & 0o022:
        raise pytest.UsageError(f"{mine} is not this user's own folder (a link, another owner, or writable by others): remove it")
    return mine / name


def _journal_dir(config: pytest.Config, resume: bool) -> Path | None:
    """The journals live in pytest's cache folder; resuming without the cache provider is a usage error."""
    folder = _cache_folder(config, "dfqs-journal")
    if folder is None and resume:
        raise pytest.UsageError("--dfqs-resume: the journal lives in pytest's cache, which is disabled (-p no:cacheprovider)")
    return folder


def _digest_store(config: pytest.Config) -> DigestStore | None:
    """Digests kept in pytest's cache folder (.pytest_cache/d/dfqs-digests), none without the cache provider."""
    folder = _cache_folder(config, "dfqs-digests")
    return DigestStore(folder) if folder is not None else None


def _per_model_path(path: Path | None, label: str, models: int) -> Path | None:
    """One record per model: with several models, each file name carries the model's whole label."""
    if path is None or models == 1:
        return path
    return path.with_name(f"{path.stem}-{label.replace('#', '-')}{path.suffix}")


def _fidelity_plot(report: Path | None, label: str, models: int) -> Path | None:
    """The routing-fidelity plot goes beside the certificate: <report>-fidelity.png."""
    return _per_model_path(report.with_name(f"{report.stem}-fidelity.png"), label, models) if report is not None else None


def _located(name: str, config: pytest.Config, settings: Settings, announce: Callable[[str], None]) -> tuple[Path, RemoteOrigin | None]:
    """Where the model's file is on this machine: its path, or for a URL the header fetched into pytest's cache."""
    if not is_remote(name):
        return _model_path(name, config), None
    folder = _scratch_folder(config, "dfqs-remote")
    try:
        return remote_header(source_of(name), folder, settings.header_timeout, REMOTE_REQUEST_TIMEOUT_S, announce, settings.download)
    except RemoteError as error:
        raise pytest.UsageError(f"--dfqs-model {name}: {error}") from None


def _model_path(name: str, config: pytest.Config) -> Path:
    if name != DEMO_MODEL:
        return Path(name).expanduser()
    from .modelfile.demo import demo_model_path  # gguf's writer and numpy, needed only to write the demo model

    folder = _scratch_folder(config, "dfqs-demo")
    try:
        return demo_model_path(folder)
    except OSError as error:
        why = f"cannot write it into {folder} ({error.strerror})"
        raise pytest.UsageError(f"--dfqs-model demo: {why}: make it a folder you can write") from None


def _announcer(config: pytest.Config) -> Callable[[str], None]:
    """Writes a line to the terminal while a test runs, past pytest's output capture."""

    def announce(line: str) -> None:
        terminal = config.pluginmanager.get_plugin("terminalreporter")
        if terminal is None:
            return
        capture = config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            terminal.write_line(f"dfqs: {line}")

    return announce


def _progress_printer(announce: Callable[[str], None], path: Path) -> Progress:
    """A once-a-second progress line for hashing large files."""

    def report(done: int, total: int, seconds: float) -> None:
        if total >= PROGRESS_MIN_BYTES:
            rate = done / max(seconds, 1e-6)
            announce(f"sha256 {path.name}: {human_bytes(done)} of {human_bytes(total)} ({human_bytes(int(rate))}/s)")

    return report
