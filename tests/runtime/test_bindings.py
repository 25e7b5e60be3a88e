"""The worker's llama.cpp: the C API's bindings alone, numpy when a request first needs it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.machine_speed import scaled

pytest.importorskip("llama_cpp")

# A fresh interpreter, as the worker's: this test process may have imported llama_cpp's high-level API already.
WORKER_START = """
import sys
from pytest_dfqs.runtime.bindings import imported_on_first_use, llama_cpp

print("imported:", sorted(name for name in ("llama_cpp.llama", "jinja2", "numpy") if name in sys.modules))
llama_cpp.llama_backend_init()
print("C API:", llama_cpp.llama_max_devices() >= 1)
np = imported_on_first_use("numpy")
print("numpy registered, not run:", "numpy.linalg" not in sys.modules)
print("numpy on first use:", float(np.float32(2.5) * 2), "numpy.linalg" in sys.modules)
"""


def test_the_worker_imports_the_bindings_alone_and_numpy_on_first_use() -> None:
    result = subprocess.run([sys.executable, "-c", WORKER_START], capture_output=True, text=True, timeout=scaled(120))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "imported: []",
        "C API: True",
        "numpy registered, not run: True",
        "numpy on first use: 5.0 True",
    ]
