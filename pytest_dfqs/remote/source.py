"""What a model's name says: a local path, or a file by URL whose header is fetched into a local cache.

`remote_header` turns `https://host/x.gguf` (or `http://`) into a sparse local file holding the header (see
`header_fetch`) and a `RemoteOrigin`: what the certificate says of where the file came from and what it cost.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

from pytest_dfqs.modelfile.split import parse_shard_name, shard_path
from pytest_dfqs.modelfile.units import human_bytes

from .download import Download, complete_download
from .download import download as download_file
from .header_fetch import CHUNK, FetchedHeader, fetch_header
from .names import file_name
from .ranges import RangeReader, RemoteError, RemoteMissing

PROGRESS_EVERY_S = 2.0
MAX_SHARDS = 256  # shard headers fetched for one set, at most


@dataclass(frozen=True)
class RemoteOrigin:
    """Where a model under test lives and what reading its header cost; its bytes are not on this machine."""

    url: str
    size: int  # the remote file's size
    validator: str | None  # the server's ETag or Last-Modified when the header was read
    fetched_bytes: int
    requests: int  # these two for every shard of a split set whose header was fetched
    chunk: int
    shards: int = 1  # headers fetched: this file's, and its set's other shards' that the server has
    revision: str | None = None  # the Hub's: the revision asked for and the commit it resolved to
    commit: str | None = None
    stated_sha256: str | None = None  # the SHA-256 the source states (the Hub's LFS digest at that commit)
    sha256: str | None = None  # set when the whole file is here: the SHA-256 computed while it was downloaded
    received: int = 0  # bytes downloaded by this run (0 when an earlier run's download is reused)

    @property
    def downloaded(self) -> bool:
        return self.sha256 is not None

    def record(self) -> dict[str, Any]:
        return asdict(self)

    def _others(self) -> str:
        return f" (and {self.shards - 1} more shards of its set)" if self.shards > 1 else ""

    def line(self) -> str:
        cost = f"{human_bytes(self.fetched_bytes)} in {self.requests} range requests of {human_bytes(self.chunk)} at most"
        if not self.downloaded:
            return f"header fetched: {cost}, of a {human_bytes(self.size)} file{self._others()}; nothing else downloaded"
        how = f"downloaded now ({human_bytes(self.received)})" if self.received else "downloaded by an earlier run"
        return f"header fetched: {cost}; the whole file{self._others()} {how}, SHA-256 {self.sha256} computed as it streamed"


@dataclass(frozen=True)
class Located:
    """Where one remote file's bytes are read from, and what its source states of it."""

    name: str  # the file's name: the cache, the test ids and the tables call it that
    url: str  # where range requests go
    stated_sha256: str | None = None  # the SHA-256 the source states (the Hub's, for an LFS file)


class Source:
    """A remote model's source: an http(s) URL, or the Hub (a subclass); where its file and its shards' files are."""

    def __init__(self, name: str) -> None:
        self.name = name

    def locate(self) -> Located:
        return Located(file_name(self.name), self.name)

    def sibling(self, located: Located, name: str) -> Located:
        """Another file of the same set, by name; RemoteMissing (now or when read) where the source lacks it."""
        return Located(name, urljoin(located.url, quote(name)))

    def key(self) -> str:
        """What names the cache folder: the same file, the same folder."""
        return self.name

    def details(self) -> dict[str, Any]:
        """What the certificate records beside the URL (the Hub: the revision and the commit it resolved to)."""
        return {}

    def whole(
        self, where: Located, destination: Path, header: FetchedHeader, announce: Callable[[str], None], download: bool
    ) -> Download | None:
        """The whole file: an earlier run's download of the same file, else a download now when asked for."""
        earlier = complete_download(destination, header.size, header.validator)
        if earlier is not None or not download:
            return earlier
        return download_file(where.url, destination, header.size, announce, where.stated_sha256)


def remote_header(
    source: Source, folder: Path, timeout: float, request_timeout: float, announce: Callable[[str], None], download: bool = False
) -> tuple[Path, RemoteOrigin]:
    """The remote file on this machine: its header in a sparse file under `folder` (one folder per file), fetched now;
    for a shard of a split set, the other shards' headers beside it, found by llama.cpp's naming (a shard the source
    lacks is left out, for DFQS-3.1 to report). With `download`, or where an earlier run downloaded the same file (its
    size and validator unchanged), the whole file (every shard of its set) instead."""
    located = source.locate()
    here = folder / hashlib.sha256(source.key().encode()).hexdigest()[:16]
    shards = [(located, _fetch(located, here / "header", timeout, request_timeout, announce))]
    for sibling in _sibling_names(located.name):
        with contextlib.suppress(RemoteMissing):  # a shard the source lacks: DFQS-3.1 says the set is incomplete
            other = source.sibling(located, sibling)
            shards.append((other, _fetch(other, here / "header", timeout, request_timeout, announce)))
    fetched = shards[0][1]
    total, requests = sum(shard.fetched for _, shard in shards), sum(shard.requests for _, shard in shards)
    stated = {"stated_sha256": located.stated_sha256, **source.details()}
    origin = RemoteOrigin(source.name, fetched.size, fetched.validator, total, requests, CHUNK, len(shards), **stated)
    downloads = [source.whole(where, here / where.name, shard, announce, download) for where, shard in shards]
    complete = [whole for whole in downloads if whole is not None]
    if len(complete) < len(downloads):
        return fetched.path, origin
    return complete[0].path, replace(origin, sha256=complete[0].sha256, received=sum(whole.received for whole in complete))


def _fetch(where: Located, folder: Path, timeout: float, request_timeout: float, announce: Callable[[str], None]) -> FetchedHeader:
    reader = RangeReader(where.url, time.monotonic() + timeout, request_timeout, progress=_progress(where.name, where.url, announce))
    return fetch_header(reader, folder / where.name)


def _sibling_names(name: str) -> list[str]:
    """The other shards of the set `name` belongs to, by llama_split_path."""
    shard = parse_shard_name(Path(name))
    if shard is None or shard.count == 1:
        return []
    if shard.count > MAX_SHARDS:
        raise RemoteError(f"{name} names a set of {shard.count:,} shards: more headers than the {MAX_SHARDS} the plugin fetches")
    return [shard_path(shard.prefix, number, shard.count).name for number in range(1, shard.count + 1) if number != shard.number]


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
