"""End to end against a hostile model: its HumanEval completions are an attack, and the eval tier still reports code_score."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pytest_dfqs.evaluation.sandbox import isolation_layers
from tests.conftest import Certification
from tests.evaluation.test_sandbox import WALLS, _jail_processes
from tests.hostile_model import write_hostile_model

pytestmark = pytest.mark.timeout(900)


def test_a_hostile_model_is_contained_and_still_scored(certify: Certification, tmp_path: Path) -> None:
    if not set(WALLS) <= set(isolation_layers()):
        pytest.skip("this machine does not offer every wall")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me")
    model = tmp_path / "hostile.gguf"
    attack = (
        f"\n    __import__('os').system('touch {outside / 'pwned'}');"
        f" print(open({str(model)!r}, 'rb').read(4)); open({str(outside / 'escaped')!r}, 'w').write('out')"
    )
    write_hostile_model(model, attack)
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    record_path = tmp_path / "metrics.json"
    result = certify.run(
        f"--dfqs-model={model}", "--dfqs-tier=eval", "--dfqs-eval-budget=quick", f"--dfqs-metrics={record_path}", "-k", "DFQS-11.1"
    )
    assert result.ret == 0, result.stdout.str()[-2000:]
    record = json.loads(record_path.read_text())
    outcomes = record["details"]["code"]["outcomes"]
    assert record["code_score"] == 0.0 and len(outcomes) == 10
    assert all(attack.strip() in outcome["completion"] for outcome in outcomes)  # the model wrote the attack every time
    assert all(outcome["status"] == "failed" and "PermissionError" in outcome["detail"] for outcome in outcomes)
    assert sorted(p.name for p in outside.iterdir()) == ["precious.txt"] and (outside / "precious.txt").read_text() == "keep me"
    assert hashlib.sha256(model.read_bytes()).hexdigest() == digest
    assert _jail_processes() == []
    assert record["conditions"]["prompt_sets"]["code"]["isolation"] == list(isolation_layers())
