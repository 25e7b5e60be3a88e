"""nginx on the loopback serving real GGUFs: the tiny MoE, SmolLM2, Gemma 3 and the DeepSeek-V4-Flash-sized file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deepseek_sized import deepseek_sized_header, write_sparse
from tests.servers import Nginx


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory, smollm2: Path, gemma3: Path, moe_model: Path) -> Iterator[Nginx]:
    root = tmp_path_factory.mktemp("www")
    for name, source in {"SmolLM2.gguf": smollm2, "gemma3.gguf": gemma3, "tiny-moe.gguf": moe_model}.items():
        (root / name).symlink_to(source)
    write_sparse(root / "DeepSeek-V4-Flash-sized.gguf", deepseek_sized_header())
    root.chmod(0o755)
    server = Nginx(root, tmp_path_factory.mktemp("nginx"))
    yield server
    server.stop()
