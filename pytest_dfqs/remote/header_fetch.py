"""A remote GGUF's header, fetched by ranges into a sparse local file of the remote size.

The file holds the header's bytes where they are in the remote file and a hole where the tensor data would be,
so the bounded reader and every static check read it as they read a local file, and llama.cpp's dry run (which
reads no weight) too. Ranges of CHUNK bytes are fetched until the header parses and ends within what was fetched:
at most the header plus one chunk, never more than MAX_HEADER. A parse error in bytes that were all fetched is
the file's own (the static checks report it); one at the edge of what was fetched asks for the next chunk. The
file appears under its name only when complete: an interrupted fetch leaves nothing but a `.partial` it removes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pytest_dfqs.modelfile.header import HeaderError, read_header
from pytest_dfqs.modelfile.units import human_bytes

from .ranges import RangeReader, RemoteError

CHUNK = 1 << 20
MAX_HEADER = 512 << 20  # far above any real header (DeepSeek-V4-Flash's is 5.5 MB)
EDGE = 64  # bytes before the fetched end where a parse error may still come from the hole's zeros (a tensor info's fixed part is 48)


@dataclass(frozen=True)
class FetchedHeader:
    """A remote header on disk, and what it took."""

    path: Path  # the sparse local file: the header's bytes, then a hole, the remote file's size
    size: int  # the remote file's size
    fetched: int  # bytes received
    requests: int
    validator: str | None  # the server's ETag or Last-Modified


def fetch_header(reader: RangeReader, destination: Path, chunk: int = CHUNK, cap: int = MAX_HEADER) -> FetchedHeader:
    """Fetch the header of `reader`'s file into `destination` (replacing it), by ranges of `chunk` bytes."""
    partial = destination.with_name(f"{destination.name}.partial")
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        first = reader.read(0, chunk)
        served = reader.served
        size = served.size if served is not None else len(first)
        with open(partial, "wb") as handle:
            handle.truncate(size)  # a hole where the tensor data is: no disk blocks
            handle.write(first)
            have = len(first)
            while not _header_within(partial, have, size, handle):
                if have >= cap:
                    raise RemoteError(f"the header does not end within its first {human_bytes(cap)}: no GGUF header is that large")
                more = reader.read(have, min(chunk, size - have))
                handle.seek(have)
                handle.write(more)
                have += len(more)
        os.replace(partial, destination)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return FetchedHeader(destination, size, reader.bytes_received, reader.requests, served.validator if served else None)


def _header_within(path: Path, have: int, size: int, handle: BinaryIO) -> bool:
    """Whether the first `have` bytes hold the whole header, or a fault of the file's own."""
    if have >= size:
        return True
    handle.flush()
    try:
        header = read_header(path)
    except HeaderError as error:
        return error.offset + EDGE < have
    return header.data_offset <= have
