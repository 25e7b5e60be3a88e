"""nginx on the loopback serving real GGUFs: the tiny MoE, SmolLM2, Gemma 3, split sets and the DeepSeek-V4-Flash-sized file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import Nginx, serve_models


@pytest.fixture(scope="session")
def served(
    tmp_path_factory: pytest.TempPathFactory, smollm2: Path, gemma3: Path, moe_model: Path, runtime_moe_model: Path, split_model: Path
) -> Iterator[Nginx]:
    """Also a split set whole (tiny-split-*) and one whose second shard is missing (lonely-00001-of-00002.gguf)."""
    second = split_model.with_name(split_model.name.replace("00001-of", "00002-of"))
    files = {"SmolLM2.gguf": smollm2, "gemma3.gguf": gemma3, "tiny-moe.gguf": moe_model, split_model.name: split_model, second.name: second}
    files["lonely-00001-of-00002.gguf"] = split_model
    files[runtime_moe_model.name] = runtime_moe_model
    server = serve_models(tmp_path_factory.mktemp("www"), tmp_path_factory.mktemp("nginx"), files)
    yield server
    server.stop()
