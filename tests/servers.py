"""Servers on 127.0.0.1 for remote models: Debian's nginx with real range semantics, and one that misbehaves on purpose.

Both are started by the tests and stopped by them. nginx's access log records every request's Range header and the
body bytes it sent, so tests count what a header fetch cost.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
DEEPSEEK_SIZED = "DeepSeek-V4-Flash-sized.gguf"
NGINX_CONFIG = """
daemon off;
master_process off;
worker_processes 1;
error_log {prefix}/error.log warn;
pid {prefix}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    log_format counted '$request_uri|$http_range|$status|$body_bytes_sent';
    access_log {prefix}/access.log counted;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    types {{ application/octet-stream gguf; }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Served:
    """One request nginx answered: the path, the Range asked for, the status and the body bytes sent."""

    path: str
    range: str
    status: int
    sent: int


class Nginx:
    """nginx serving the files of `root` on a free loopback port."""

    def __init__(self, root: Path, prefix: Path) -> None:
        self.root, self.prefix, self.port = root, prefix, free_port()
        prefix.mkdir(parents=True, exist_ok=True)
        config = prefix / "nginx.conf"
        config.write_text(NGINX_CONFIG.format(prefix=prefix, port=self.port, root=root))
        self.process = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(config)], stderr=subprocess.PIPE)
        _wait_for_port(self.port, self.process)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def log(self) -> list[Served]:
        lines = (self.prefix / "access.log").read_text().splitlines()
        rows = [line.split("|") for line in lines]
        return [Served(path, "" if ranged == "-" else ranged, int(status), int(sent)) for path, ranged, status, sent in rows]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited: {process.stderr.read().decode() if process.stderr else ''}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nginx did not listen on {port} within 10 s")


def serve_models(root: Path, prefix: Path, files: dict[str, Path]) -> Nginx:
    """nginx serving `files` (linked under their names) and the sparse DeepSeek-V4-Flash-sized file."""
    from tests.deepseek_sized import deepseek_sized_header, write_sparse

    for name, source in files.items():
        (root / name).symlink_to(source)
    write_sparse(root / DEEPSEEK_SIZED, deepseek_sized_header())
    root.chmod(0o755)
    return Nginx(root, prefix)


Behaviour = Callable[[BaseHTTPRequestHandler, bytes], None]


class Misbehaving:
    """A server whose every answer is `behaviour(handler, data)`: what a hostile or broken server does."""

    def __init__(self, data: bytes, behaviour: Behaviour) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                outer.requests += 1
                try:
                    behaviour(self, data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.requests = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str = "model.gguf") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{name}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def asked_range(handler: BaseHTTPRequestHandler, size: int) -> tuple[int, int]:
    """The byte range a request asks for, [first, last] within a file of `size` bytes."""
    first, _, last = handler.headers.get("Range", "bytes=0-").removeprefix("bytes=").partition("-")
    return int(first), min(int(last) if last else size - 1, size - 1)


def send_range(handler: BaseHTTPRequestHandler, data: bytes, etag: str = '"v1"', size: int | None = None, cut: int | None = None) -> None:
    """A correct 206 answer, or one that claims another size (`size`) or stops after `cut` bytes."""
    first, last = asked_range(handler, len(data))
    body = data[first : last + 1]
    handler.send_response(206)
    handler.send_header("Content-Range", f"bytes {first}-{last}/{size if size is not None else len(data)}")
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("ETag", etag)
    handler.end_headers()
    handler.wfile.write(body[:cut] if cut is not None else body)
