"""Many models under pytest-xdist: each model's tests on one worker, one load each, one merged certificate."""

from __future__ import annotations

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
    assert moe["runtime"]["workers_started"] == 1 and moe["runtime"]["loads"] == 1
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
