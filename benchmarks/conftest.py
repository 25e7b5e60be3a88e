"""Benchmark fixtures: the real SmolLM2 and Gemma 3 models, cached like the tests' copies."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.real_model import fetch_gemma3, fetch_smollm2
from tests.tiny_deepseek4 import write_tiny_deepseek4


@pytest.fixture(scope="session")
def smollm2(pytestconfig: pytest.Config) -> Path:
    return fetch_smollm2(Path(pytestconfig.cache.mkdir("smollm2")))


@pytest.fixture(scope="session")
def gemma3(pytestconfig: pytest.Config) -> Path:
    return fetch_gemma3(Path(pytestconfig.cache.mkdir("gemma3")))


@pytest.fixture(scope="session")
def deepseek4_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tests' tiny deepseek4 (DeepSeek-V4-Flash's architecture), first layer routed by token-id table."""
    path = tmp_path_factory.mktemp("models") / "tiny-deepseek4.gguf"
    write_tiny_deepseek4(path, hash_layer_count=1)
    return path
