"""gguf's constants without the rest of gguf, and the whole package as soon as more of it is used."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.machine_speed import scaled

# Run in a fresh interpreter: this test process imported gguf long ago.
DEFERRED = """
import sys
from pytest_dfqs.modelfile.gguf_package import defer_package_init

defer_package_init()
from gguf.constants import GGUFValueType, Keys
from pytest_dfqs.modelfile.header import read_header

print("after constants:", sorted(name for name in ("numpy", "yaml", "gguf.gguf_writer") if name in sys.modules))
import gguf

writer = gguf.GGUFWriter(sys.argv[1], "llama")
writer.add_uint32(Keys.LLM.BLOCK_COUNT.format(arch="llama"), 3)
writer.write_header_to_file()
writer.write_kv_data_to_file()
writer.close()
print("after GGUFWriter:", sorted(name for name in ("numpy", "gguf.gguf_writer") if name in sys.modules))
print("same constants:", gguf.constants is sys.modules["gguf.constants"] and gguf.GGUFValueType is GGUFValueType)
print("block count:", read_header(__import__("pathlib").Path(sys.argv[1])).metadata["llama.block_count"])
print("reader:", len(gguf.GGUFReader(sys.argv[1]).fields))
"""


def test_the_constants_come_alone_and_the_package_whole_when_used(tmp_path: Path) -> None:
    path = tmp_path / "written.gguf"
    result = subprocess.run([sys.executable, "-c", DEFERRED, str(path)], capture_output=True, text=True, timeout=scaled(120))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:4] == [
        "after constants: []",
        "after GGUFWriter: ['gguf.gguf_writer', 'numpy']",
        "same constants: True",
        "block count: 3",
    ]
    assert int(result.stdout.splitlines()[4].removeprefix("reader: ")) >= 4  # GGUF's own fields and the one key


def test_nothing_changes_once_gguf_is_imported() -> None:
    import gguf

    from pytest_dfqs.modelfile.gguf_package import defer_package_init

    defer_package_init()
    assert sys.modules["gguf"] is gguf and "__getattr__" not in vars(gguf)


def test_a_header_only_certification_imports_no_more_than_it_needs(pytester: pytest.Pytester, moe_model: Path) -> None:
    """What a static run never uses it never imports: numpy, yaml, gguf's reader and writer cost start-up and exit time."""
    pytester.makeconftest(
        "import sys\n"
        "def pytest_unconfigure(config):\n"
        "    print('imported:', sorted(name for name in ('numpy', 'yaml', 'gguf.gguf_writer', 'gguf.gguf_reader', 'jinja2')"
        " if name in sys.modules))\n"
    )
    result = pytester.runpytest_subprocess(f"--dfqs-model={moe_model}")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["imported: []"])
