"""Headers fetched from Debian's nginx, a server with real range semantics: the same header as the local file, for
the header's bytes and one chunk at most."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pytest_dfqs.modelfile.header import read_header
from pytest_dfqs.remote.header_fetch import CHUNK, fetch_header
from pytest_dfqs.remote.ranges import RangeReader
from tests.servers import NGINX, Nginx

pytestmark = pytest.mark.skipif(not os.access(NGINX, os.X_OK), reason="nginx is not installed (.ci/run installs Debian's nginx-light)")


@pytest.mark.parametrize("name", ["tiny-moe.gguf", "SmolLM2.gguf", "gemma3.gguf", "DeepSeek-V4-Flash-sized.gguf"])
def test_a_header_by_url_is_the_local_header_for_the_header_and_one_chunk(served: Nginx, name: str, tmp_path: Path) -> None:
    local_path = served.root / name
    reader = RangeReader(served.url(name), time.monotonic() + 120)
    fetched = fetch_header(reader, tmp_path / name)
    local, remote = read_header(local_path), read_header(fetched.path)
    assert (remote.metadata, remote.tensors, remote.data_offset) == (local.metadata, local.tensors, local.data_offset)
    assert fetched.size == local_path.stat().st_size == fetched.path.stat().st_size
    sent = [row for row in served.log() if row.path == f"/{name}"]
    assert sum(row.sent for row in sent) == fetched.fetched and len(sent) == fetched.requests
    assert all(row.status == 206 for row in sent)
    assert local.data_offset <= fetched.fetched <= local.data_offset + CHUNK, (fetched.fetched, local.data_offset)
    print(f"\n{name}: header {local.data_offset:,} bytes; fetched {fetched.fetched:,} bytes in {fetched.requests} requests")
