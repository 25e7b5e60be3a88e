"""The gguf package: its constants at once, the rest of it when first used.

The plugin reads a header with gguf's constants alone (`gguf.constants`: the GGUF format's names, types and sizes,
a module that imports nothing else). But `import gguf.constants` runs the package's `__init__` first, and that
imports all of gguf: its reader, writer and quantizers (numpy) and its metadata helpers (yaml), about 0.25 s before
the first header can be read and llama.cpp asked to judge it. `defer_package_init` registers the package without
running its `__init__`; the first attribute asked of the package that its submodules did not bring (`GGUFWriter`,
say) runs the `__init__` in full, in the package's own namespace, and from then on `gguf` is what `import gguf`
makes it. Submodules (`gguf.constants`, `gguf.gguf_writer`) import as usual meanwhile, through the package's path.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any


def defer_package_init() -> None:
    """Register gguf with its `__init__` deferred; nothing to do once gguf is imported (or when it is not installed)."""
    if "gguf" in sys.modules:
        return
    spec = importlib.util.find_spec("gguf")
    if spec is None or spec.loader is None:
        return  # the first import of it says what is missing
    package, loader = importlib.util.module_from_spec(spec), spec.loader
    namespace = vars(package)

    def complete(name: str) -> Any:
        del namespace["__getattr__"]
        loader.exec_module(package)
        return getattr(package, name)

    namespace["__getattr__"] = complete
    sys.modules["gguf"] = package
