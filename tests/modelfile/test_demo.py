"""The built-in demo model is deterministic and generated once."""

from __future__ import annotations

from pathlib import Path

from pytest_dfqs.modelfile.demo import DEMO_FILE, demo_model_path, write_model


def test_generation_is_deterministic(tmp_path: Path) -> None:
    write_model(tmp_path / "a.gguf")
    write_model(tmp_path / "b.gguf")
    assert (tmp_path / "a.gguf").read_bytes() == (tmp_path / "b.gguf").read_bytes()


def test_demo_is_written_once_and_atomically(tmp_path: Path) -> None:
    first = demo_model_path(tmp_path)
    stamp = first.stat().st_mtime_ns
    assert first.name == DEMO_FILE and demo_model_path(tmp_path) == first
    assert first.stat().st_mtime_ns == stamp
    assert not list(first.parent.glob("*.partial"))
