"""Which model names are remote, and the file name a URL gives (imported at plugin start-up: nothing heavy here)."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

SCHEMES = ("http://", "https://")


def is_remote(name: str) -> bool:
    return name.startswith(SCHEMES)


def file_name(url: str) -> str:
    """The file's name, the last part of the URL's path: what test ids, tables and the cache call it."""
    parts = urlsplit(url)
    name = unquote(parts.path.rstrip("/").rpartition("/")[2])
    if not parts.hostname:
        raise ValueError(f"{url} names no host")
    if not name or name in (".", ".."):
        raise ValueError(f"{url} names no file (the URL's path must end with the file's name)")
    return name
