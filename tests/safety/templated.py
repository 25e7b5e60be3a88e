"""GGUF copies whose chat templates are replaced or added: how a hostile template reaches a real model file."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from gguf.constants import GGUFValueType

from tests.gguf_bytes import gguf_string
from tests.gguf_structure import Entry, parse, serialize

TEMPLATE_KEY = "tokenizer.chat_template"


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
