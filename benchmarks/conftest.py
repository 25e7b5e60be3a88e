"""Benchmark fixtures: the real SmolLM2 model, cached like the tests' copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.real_model import fetch_smollm2


@pytest.fixture(scope="session")
def smollm2(pytestconfig: pytest.Config) -> Path:
    return fetch_smollm2(Path(pytestconfig.cache.mkdir("smollm2")))
