"""What a model's name says: a local path, or a file by URL whose header is fetched into a local cache.

`remote_header` turns `https://host/x.gguf` (or `http://`) into a sparse local file holding the header (see
`header_fetch`) and a `RemoteOrigin`: what the certificate says of where the file came from and what it cost.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pytest_dfqs.modelfile.units import human_bytes

from .header_fetch import CHUNK, fetch_header
from .names import file_name
from .ranges import RangeReader

PROGRESS_EVERY_S = 2.0


@dataclass(frozen=True)
class RemoteOrigin:
    """Where a model under test lives and what reading its header cost; its bytes are not on this machine."""

    url: str
    size: int  # the remote file's size
    validator: str | None  # the server's ETag or Last-Modified when the header was read
    fetched_bytes: int
    requests: int
    chunk: int

    def record(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        return (
            f"header fetched: {human_bytes(self.fetched_bytes)} in {self.requests} range requests of {human_bytes(self.chunk)}"
            f" at most, of a {human_bytes(self.size)} file; nothing else downloaded"
        )


def remote_header(
    url: str, folder: Path, timeout: float, request_timeout: float, announce: Callable[[str], None]
) -> tuple[Path, RemoteOrigin]:
    """The header of the file at `url` in a sparse file under `folder` (one folder per URL), fetched now."""
    name = file_name(url)  # checked with the options already
    destination = folder / hashlib.sha256(url.encode()).hexdigest()[:16] / name
    reader = RangeReader(url, time.monotonic() + timeout, request_timeout, progress=_progress(name, url, announce))
    fetched = fetch_header(reader, destination)
    return fetched.path, RemoteOrigin(url, fetched.size, fetched.validator, fetched.fetched, fetched.requests, CHUNK)


def _progress(name: str, url: str, announce: Callable[[str], None]) -> Callable[[int], None]:
    """A line every PROGRESS_EVERY_S while a header arrives slowly."""
    started = last = time.monotonic()

    def report(received: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY_S:
            last = now
            rate = received / max(now - started, 1e-6)
            host = urlsplit(url).hostname
            announce(f"fetching the header of {name} from {host}: {human_bytes(received)} so far ({human_bytes(int(rate))}/s)")

    return report
