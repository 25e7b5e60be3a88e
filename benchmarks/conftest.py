"""Benchmark fixtures: the real SmolLM2 and Gemma 3 models, cached like the tests' copies."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.real_model import fetch_gemma3, fetch_smollm2


@pytest.fixture(scope="session")
def smollm2(pytestconfig: pytest.Config) -> Path:
    return fetch_smollm2(Path(pytestconfig.cache.mkdir("smollm2")))


@pytest.fixture(scope="session")
def gemma3(pytestconfig: pytest.Config) -> Path:
    return fetch_gemma3(Path(pytestconfig.cache.mkdir("gemma3")))
