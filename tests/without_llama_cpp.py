"""A Python started by a test that sees no llama-cpp-python: a plain `pip install .`, as the README's first command makes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HIDE_LLAMA_CPP = 'import sys; sys.modules["llama_cpp"] = None  # find_spec("llama_cpp") is None, as when it is not installed\n'


def hiding_llama_cpp(folder: Path) -> str:
    """A PYTHONPATH under which llama-cpp-python looks uninstalled to every Python started with it (its sitecustomize)."""
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(HIDE_LLAMA_CPP)
    path = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    probe = "import importlib.util, sitecustomize; print(sitecustomize.__file__, importlib.util.find_spec('llama_cpp'))"
    seen = subprocess.run([sys.executable, "-c", probe], env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True, check=True)
    assert seen.stdout.split() == [str(folder / "sitecustomize.py"), "None"], seen  # no other sitecustomize shadows ours
    return path
