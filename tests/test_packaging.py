"""The wheel carries the conformance suite and the schemas; the plugin loads lightly."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(300)
def test_wheel_ships_conformance_and_schemas(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
    )
    wheel = next(tmp_path.glob("pytest_dfqs-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "pytest_dfqs/conformance/clauses.toml" in names
    assert "pytest_dfqs/conformance/spec/DFQS-v1.0.txt" in names
    assert "pytest_dfqs/conformance/test_single_file.py" in names
    assert "pytest_dfqs/schemas/dfqs-certificate-1.schema.json" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "dfqs = pytest_dfqs.plugin" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_loading_the_plugin_does_not_import_llama_cpp() -> None:
    code = (
        "import sys, pytest_dfqs.plugin, pytest_dfqs.checks, pytest_dfqs.certificate;"
        "print(sorted(m for m in sys.modules if m.startswith('llama_cpp')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
