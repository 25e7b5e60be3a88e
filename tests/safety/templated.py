"""Chat templates for the tests: GGUF copies whose templates are replaced or added (how a hostile template reaches a real
model file), and llama.cpp's corpus of real templates."""

from __future__ import annotations

import tarfile
from dataclasses import replace
from pathlib import Path, PurePosixPath

from gguf.constants import GGUFValueType

from tests.gguf_bytes import gguf_string
from tests.gguf_structure import Entry, parse, serialize
from tests.llama_cpp_source import LLAMA_CPP_PYTHON, SDIST, fetch_sdist

TEMPLATE_KEY = "tokenizer.chat_template"
TEMPLATES = f"llama_cpp_python-{LLAMA_CPP_PYTHON}/vendor/llama.cpp/models/templates/"
REAL_TEMPLATE_COUNT = 70  # llama.cpp's corpus in the pinned sdist: what every runtime is tested with upstream


def with_templates(base: Path, target: Path, templates: dict[str, str]) -> Path:
    """`base` written to `target` with each key of `templates` set to its text (replaced in place, else added last)."""
    parts = parse(base)
    entries = list(parts.entries)
    for key, text in templates.items():
        entry = Entry(key, GGUFValueType.STRING, gguf_string(text))
        at = next((index for index, old in enumerate(entries) if old.key == key), None)
        if at is None:
            entries.append(entry)
        else:
            entries[at] = entry
    serialize(replace(parts, entries=tuple(entries)), target)
    return target


def read_real_templates(folder: Path) -> dict[str, str]:
    """Every `.jinja` file of llama.cpp's template corpus in the pinned sdist (file name -> text), in name order.

    The sdist is fetched with pip into `folder` on the first call only, and read without unpacking it.
    """
    sdist = folder / SDIST if (folder / SDIST).is_file() else fetch_sdist(folder)
    templates = {}
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            if member.isfile() and member.name.startswith(TEMPLATES) and member.name.endswith(".jinja"):
                handle = archive.extractfile(member)
                assert handle is not None
                templates[PurePosixPath(member.name).name] = handle.read().decode("utf-8")
    return dict(sorted(templates.items()))
