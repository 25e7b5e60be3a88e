"""Ctrl-C and SIGTERM during a long llama.cpp request: a prompt stop, an honest certificate, no process left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import IO

import pytest

from tests.interruptible import start_interruptible
from tests.machine_speed import llama_threads, scaled

from .conftest import Certification, validate_certificate

FILL_STARTED = "filling 65,537 positions"  # the decode past 64K announces its fill, then llama.cpp works for ~20 s
STOP_LIMIT_S = 5.0


def processes_with(marker: str) -> list[int]:
    """Live processes whose environment carries `marker`: the run's pytest, its worker, anything they started."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def read_until(stream: IO[str], text: str) -> list[str]:
    """The lines of a run's output up to the first that holds `text` (llama.cpp is busy from then on)."""
    lines = []
    for line in stream:
        lines.append(line)
        if text in line:
            break
    return lines


def start_run(model: Path, folder: Path, marker: str, *args: str) -> subprocess.Popen[str]:
    """`pytest --dfqs-model=MODEL --dfqs-tier=runtime ARGS` in `folder`, in a session (terminal) of its own, its processes
    marked by `marker` in their environment; the certificate goes to folder/certificate.json."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        f"--dfqs-model={model}",
        "--dfqs-tier=runtime",
        f"--dfqs-threads={llama_threads()}",
        f"--dfqs-report={folder / 'certificate.json'}",
    ]
    return start_interruptible(
        [*command, *args, "-p", "no:randomly", "-p", "no:cacheprovider"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "DFQS_TEST_RUN": marker},
    )


def interrupted_during_the_fill(model: Path, folder: Path, signum: signal.Signals, *args: str) -> str:
    """A run of decode-past-64k signalled once llama.cpp is inside its fill: it stops within STOP_LIMIT_S, exit 2,
    no process of it left; its output after the signal."""
    marker = str(uuid.uuid4())
    run = start_run(model, folder, marker, "-k", "decode-past-64k", *args)
    assert run.stdout is not None
    output = read_until(run.stdout, FILL_STARTED)
    assert run.poll() is None and llama_workers_with(marker), "".join(output)
    time.sleep(1.0)  # llama.cpp is inside the fill now
    sent = time.monotonic()
    os.killpg(run.pid, signum)
    rest, _ = run.communicate(timeout=scaled(60))
    stopped_after = time.monotonic() - sent
    print(f"{signum.name}{' ' if args else ''}{' '.join(args)}: pytest returned {stopped_after:.2f} s after the signal")
    assert run.returncode == pytest.ExitCode.INTERRUPTED, "".join(output) + rest
    assert stopped_after < STOP_LIMIT_S, rest
    assert processes_with(marker) == []
    return rest


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds leftover processes through /proc")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_a_fill_stops_the_run_within_seconds(moe_model: Path, tmp_path: Path, signum: signal.Signals) -> None:
    report = tmp_path / "certificate.json"
    rest = interrupted_during_the_fill(moe_model, tmp_path, signum)
    certificate = json.loads(report.read_text())
    validate_certificate(certificate)
    assert certificate["interrupted"] and not certificate["complete"] and certificate["verdict"] == "INCOMPLETE"
    far = next(c for c in certificate["models"][0]["clauses"] if c["id"] == "DFQS-3.7")
    assert far["status"] == "NOT EVALUATED"  # a MAY clause, not deciding, but never MET from a run that did not finish
    assert far["undecided"] == "deselected: declared-context; the run was interrupted before decode-past-64k"
    assert "interrupted" in rest


def llama_workers_with(marker: str) -> list[int]:
    return [pid for pid in processes_with(marker) if b"pytest_dfqs.runtime.worker" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone already
        return None
    return int(stat.rpartition(")")[2].split()[1])  # the fields after the command's name: state, then the parent's pid


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds leftover processes through /proc")
def test_an_interrupt_under_xdist_keeps_the_findings_workers_made(moe_model: Path, tmp_path: Path) -> None:
    """Ctrl-C reaches the controller and the xdist workers: the findings already reported are certified, as interrupted."""
    marker = str(uuid.uuid4())
    report = tmp_path / "certificate.json"
    run = start_run(moe_model, tmp_path, marker, "-n", "2")
    deadline = time.monotonic() + 120
    # the controller's own llama.cpp worker judges the header; an xdist worker's starts once its static checks are done
    while not [pid for pid in llama_workers_with(marker) if parent_of(pid) not in (run.pid, None)] and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2.0)
    sent = time.monotonic()
    os.killpg(run.pid, signal.SIGINT)
    output, _ = run.communicate(timeout=scaled(60))
    print(f"SIGINT under xdist: pytest returned {time.monotonic() - sent:.2f} s after the signal")
    assert run.returncode == pytest.ExitCode.INTERRUPTED, output
    assert time.monotonic() - sent < STOP_LIMIT_S
    assert processes_with(marker) == []
    certificate = json.loads(report.read_text())
    validate_certificate(certificate)
    assert certificate["interrupted"] and certificate["verdict"] in ("INCOMPLETE", "NOT CONFORMANT")
    clauses = {c["id"]: c for c in certificate["models"][0]["clauses"]}
    assert clauses["DFQS-AI.1"]["status"] == "NOT APPLICABLE"  # the worker's first finding reached the certificate
    assert any(c["findings"] for c in clauses.values() if c["tier"] == "runtime")


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker through /proc")
def test_a_worker_killed_from_outside_is_an_error_and_the_run_goes_on(moe_model: Path, tmp_path: Path) -> None:
    """SIGKILL to llama.cpp's worker mid-fill (as the OOM killer does): that check is ERROR naming the signal, the next says why
    it could not run, and the session still ends with its certificate."""
    marker = str(uuid.uuid4())
    report = tmp_path / "certificate.json"
    run = start_run(moe_model, tmp_path, marker, "-k", "decode-past-64k or routing-det")
    assert run.stdout is not None
    output = read_until(run.stdout, FILL_STARTED)
    time.sleep(1.0)
    (worker,) = llama_workers_with(marker)
    os.kill(worker, signal.SIGKILL)
    rest, _ = run.communicate(timeout=scaled(120))
    assert run.returncode == 0, "".join(output) + rest  # INCOMPLETE: a SHALL clause errored, nothing failed
    certificate = json.loads(report.read_text())
    validate_certificate(certificate)
    assert certificate["verdict"] == "INCOMPLETE" and not certificate["interrupted"]
    clauses = {c["id"]: c for c in certificate["models"][0]["clauses"]}
    far = {f["check"]: f for f in clauses["DFQS-3.7"]["findings"]}["decode-past-64k"]
    assert far["status"] == "ERROR" and "died with signal SIGKILL during 'evaluate'" in far["summary"]
    routing = clauses["DFQS-3.3"]
    assert routing["status"] == "ERROR" and routing["undecided"].startswith(
        "ERROR: could not run: the llama.cpp worker died with signal SIGKILL"
    )
    assert processes_with(marker) == []


def test_a_request_past_its_time_limit_is_an_error_stating_the_limit(certify: Certification, moe_model: Path) -> None:
    result = certify.run(f"--dfqs-model={moe_model}", "--dfqs-tier=runtime", "-k", "decode-past-64k", "--dfqs-request-timeout=2")
    assert result.ret == 0  # the check errored: nothing about the model was decided, and DFQS-3.7 is a MAY clause
    far = {f["check"]: f for f in certify.clause("DFQS-3.7")["findings"]}["decode-past-64k"]
    assert far["status"] == "ERROR"
    assert "gave no answer to 'evaluate' within 2 s (--dfqs-request-timeout) and was stopped" in far["summary"]
