"""The wheel carries the conformance suite and the schemas; the plugin loads lightly."""

from __future__ import annotations

import ast
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
    assert "pytest_dfqs/schemas/dfqs-certificate-2.schema.json" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "dfqs = pytest_dfqs.plugin" in zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "dfqs-merge = pytest_dfqs.merge:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def _modules_after(statement: str, prefixes: tuple[str, ...]) -> list[str]:
    code = f"import sys; {statement}; print(sorted(m for m in sys.modules if m.split('.')[0] in {prefixes!r}))"
    return ast.literal_eval(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def test_the_entry_point_imports_nothing_heavy() -> None:
    assert _modules_after("import pytest_dfqs.plugin", ("gguf", "numpy", "llama_cpp", "jsonschema")) == []


def test_the_static_tier_does_not_import_llama_cpp() -> None:
    assert _modules_after("import pytest_dfqs.certification, pytest_dfqs.clauses.registry", ("llama_cpp",)) == []
