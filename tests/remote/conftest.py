"""nginx on the loopback serving real GGUFs: the tiny MoE, SmolLM2, Gemma 3 and the DeepSeek-V4-Flash-sized file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import Nginx, serve_models


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory, smollm2: Path, gemma3: Path, moe_model: Path) -> Iterator[Nginx]:
    files = {"SmolLM2.gguf": smollm2, "gemma3.gguf": gemma3, "tiny-moe.gguf": moe_model}
    server = serve_models(tmp_path_factory.mktemp("www"), tmp_path_factory.mktemp("nginx"), files)
    yield server
    server.stop()
