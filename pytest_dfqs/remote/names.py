"""Which model names are remote, and the file name a URL gives (imported at plugin start-up: nothing heavy here)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

HF_SCHEME = "hf://"
SCHEMES = ("http://", "https://", HF_SCHEME)
HF_NAME = re.compile(r"hf://(?P<repo>[\w.-]+/[\w.-]+)(?:@(?P<revision>[^/:]+))?(?:(?P<path>/.+)|:(?P<quant>[\w.-]+))")


@dataclass(frozen=True)
class HubName:
    """What an hf:// name says: the repository, the revision, and a file's path or a quantization tag."""

    repo: str
    revision: str
    path: str | None
    quant: str | None


def is_remote(name: str) -> bool:
    return name.startswith(SCHEMES)


def check_remote_name(name: str) -> None:
    """ValueError, saying what is wrong, for a remote name that names no file."""
    if name.startswith(HF_SCHEME):
        parse_hub_name(name)
    else:
        file_name(name)


def parse_hub_name(name: str) -> HubName:
    match = HF_NAME.fullmatch(name)
    if match is None:
        raise ValueError(f"{name} is not hf://OWNER/REPO/PATH.gguf, hf://OWNER/REPO@REVISION/PATH.gguf or hf://OWNER/REPO:QUANT")
    path = match["path"].lstrip("/") if match["path"] else None
    return HubName(match["repo"], match["revision"] or "main", path, match["quant"])


def file_name(url: str) -> str:
    """The file's name, the last part of the URL's path: what test ids, tables and the cache call it."""
    parts = urlsplit(url)
    name = unquote(parts.path.rstrip("/").rpartition("/")[2])
    if not parts.hostname:
        raise ValueError(f"{url} names no host")
    if not name or name in (".", ".."):
        raise ValueError(f"{url} names no file (the URL's path must end with the file's name)")
    return name
