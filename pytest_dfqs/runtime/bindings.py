"""llama.cpp's C API as llama-cpp-python binds it, without the package's high-level API; numpy when first used.

`import llama_cpp` runs the package's `__init__`, which imports its high-level API too (`llama_cpp.llama`: numpy,
jinja2, the chat formats): about 0.2 s of every worker's start, spent on code the worker never calls. This module
registers the package without running its `__init__`, then imports only the ctypes bindings. Imported by the worker
alone, in its own process: a process that imports `llama_cpp` for the high-level API must not import this first.
The worker imports numpy the same way, when a request first needs it: a dry run never does (0.1 s more).
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def _register_package() -> None:
    if "llama_cpp" in sys.modules:
        return
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None:
        raise ModuleNotFoundError("No module named 'llama_cpp': pip install 'pytest-dfqs[runtime]'", name="llama_cpp")
    sys.modules["llama_cpp"] = importlib.util.module_from_spec(spec)  # a package (its __path__ set), __init__ not run


def imported_on_first_use(name: str) -> ModuleType:
    """The module `name`, imported when one of its attributes is first used (importlib.util.LazyLoader)."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_register_package()

from llama_cpp import llama_cpp  # noqa: E402  (the package registered first)
from llama_cpp._ggml import libggml  # noqa: E402

__all__ = ["imported_on_first_use", "libggml", "llama_cpp"]
