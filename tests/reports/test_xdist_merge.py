"""Many models under pytest-xdist: each model's tests on one worker, one load each, one merged certificate."""

from __future__ import annotations

import os
import re
from collections import defaultdict
from pathlib import Path

import pytest

from tests.conftest import Certification, validate_certificate

pytestmark = pytest.mark.timeout(600)


def test_two_models_under_xdist(certify: Certification, runtime_moe_model: Path, split_model: Path) -> None:
    models = (f"--dfqs-model={runtime_moe_model}", f"--dfqs-model={split_model}")
    result = certify.run(*models, "--dfqs-tier=runtime", "--dfqs-claims=ds4-mtp", "-n", "2", "-v")
    assert result.ret == 1  # the split shard is not conformant
    workers: dict[str, set[str]] = defaultdict(set)
    for line in result.stdout.lines:
        match = re.match(r"\[(gw\d)\].*-(tiny-moe-4k|tiny-split-00001-of-00002)\.gguf\]", line)
        if match:
            workers[match[2]].add(match[1])
    assert len(workers["tiny-moe-4k"]) == 1 and len(workers["tiny-split-00001-of-00002"]) == 1
    certificate = certify.certificate()
    validate_certificate(certificate)
    verdicts = {m["file_name"]: m["verdict"] for m in certificate["models"]}
    assert verdicts == {"tiny-moe-4k.gguf": "INCOMPLETE", "tiny-split-00001-of-00002.gguf": "NOT CONFORMANT"}
    assert certificate["verdict"] == "NOT CONFORMANT"
    moe = certificate["models"][0]
    # two llama.cpp workers, one load: the controller's judged the header (no weight read), the xdist worker's ran the tests
    assert moe["runtime"]["workers_started"] == 2 and moe["runtime"]["loads"] == 1
    assert {c["id"]: c["status"] for c in moe["clauses"]}["DFQS-3.3"] == "MET"
    assert [(c["id"], c["status"]) for c in moe["claims"]] == [("card-file-size", "NOT MET")]  # a claim's finding came from its worker
    assert any(line.startswith("[gw") and "ds4-mtp:card-file-size-tiny-moe-4k.gguf" in line for line in result.stdout.lines)
    result.stdout.fnmatch_lines(
        [
            "*DFQS v1.0 certification: tiny-moe-4k.gguf*",
            "verdict: INCOMPLETE at tier runtime*",
            "undecided: DFQS-11.1, DFQS-11.2 (tier eval not run)",
            "*DFQS v1.0 certification: tiny-split-00001-of-00002.gguf*",
            "verdict: NOT CONFORMANT at tier runtime*",
        ]
    )


COUNT_LLAMA_WORKERS = """\
import os, sys
if sys.orig_argv[1:3] == ["-m", "pytest_dfqs.runtime.worker"]:  # a llama.cpp worker starting: one line each
    with open(os.environ["DFQS_WORKER_STARTS"], "a") as starts:
        starts.write(f"{os.getpid()}\\n")
"""


def test_every_llama_cpp_worker_under_xdist_is_one_the_certificate_counts(
    certify: Certification, runtime_moe_model: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """llama.cpp judges the header on the controller, whose header is shown; an xdist worker's header is never shown and
    starts no llama.cpp worker: only the xdist worker that tests the model starts another, and both are counted."""
    counting = tmp_path / "counting"
    counting.mkdir()
    (counting / "sitecustomize.py").write_text(COUNT_LLAMA_WORKERS)
    starts = tmp_path / "starts.txt"
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(counting), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("DFQS_WORKER_STARTS", str(starts))
    result = certify.run(f"--dfqs-model={runtime_moe_model}", "-n", "2")  # the static tier: gw1 tests nothing
    assert result.ret == 0
    result.stdout.fnmatch_lines(["  llama.cpp, no weight read: at a 4,096-token context it needs about *: it fits"])
    started = starts.read_text().split()  # no file: our sitecustomize did not run, the count cannot be trusted
    assert len(started) == 2 == certify.certificate()["models"][0]["runtime"]["workers_started"], started
