"""A Hub-compatible server on 127.0.0.1 for huggingface_hub (through HF_ENDPOINT), started and stopped by the tests.

Neither self-hosted mirror on PyPI serves what the plugin reads, offline: olah 0.5.4 answers `resolve` with 200 and
the whole file (no 302, no X-Linked-* headers, Range ignored); hf-local-hub 3.0.0 ships its CLI without the Go server
it starts. So this implements the documented behaviour huggingface_hub 2.4 relies on: `HEAD|GET /{repo}/resolve/{rev}/
{path}` of an LFS file answers 302 with X-Repo-Commit, X-Linked-Etag (the SHA-256), X-Linked-Size and a Location on
another port (the "CDN", which serves byte ranges; huggingface_hub follows only redirects to the same host and port),
`GET /api/models/{repo}/revision/{rev}` and `/api/models/{repo}/tree/{rev}` list the files, errors carry X-Error-Code.
A repository listed in `private` answers 401 without `Authorization: Bearer TOKEN`.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

TOKEN = "hf_test_token"


class Hub:
    """Repositories `root/OWNER/NAME/...`; one commit per repository, named after its files' digests."""

    def __init__(self, root: Path, private: tuple[str, ...] = ()) -> None:
        self.root, self.private = root, private
        self.digests: dict[Path, str] = {}
        self.hub = ThreadingHTTPServer(("127.0.0.1", 0), self._handler(cdn=False))
        self.cdn = ThreadingHTTPServer(("127.0.0.1", 0), self._handler(cdn=True))
        for server in (self.hub, self.cdn):
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.hub.server_address[1]}"

    def stop(self) -> None:
        for server in (self.hub, self.cdn):
            server.shutdown()
            server.server_close()

    def files(self, repo: str) -> list[Path] | None:
        folder = self.root / repo
        return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else None

    def sha256(self, path: Path) -> str:
        if path not in self.digests:
            self.digests[path] = hashlib.sha256(path.read_bytes()).hexdigest()
        return self.digests[path]

    def commit(self, repo: str) -> str:
        listed = [(str(p.relative_to(self.root / repo)), self.sha256(p)) for p in self.files(repo) or []]
        return hashlib.sha1(json.dumps(listed).encode()).hexdigest()

    def _handler(self, cdn: bool) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:  # noqa: N802 (http.server's names)
                self.do_GET()

            def do_GET(self) -> None:  # noqa: N802
                path = unquote(urlsplit(self.path).path)
                if cdn:
                    return self._cdn(path)
                if (match := re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)) is not None:
                    return self._info(match[1])
                if (match := re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/.*)?", path)) is not None:
                    return self._tree(match[1])
                if (match := re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)) is not None:
                    return self._resolve(match[1], match[2], match[3])
                return self._error(404, "NotFound", "no such route")

            def _allowed(self, repo: str) -> bool:
                if repo in hub.private and self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self._error(401, "RepoNotFound", "Repository not found")  # what the Hub answers for a private repo
                    return False
                if hub.files(repo) is None:
                    self._error(404, "RepoNotFound", "Repository not found")
                    return False
                return True

            def _resolve(self, repo: str, revision: str, name: str) -> None:
                if not self._allowed(repo):
                    return
                commit = hub.commit(repo)
                if revision not in ("main", commit):
                    return self._error(404, "RevisionNotFound", "Revision not found")
                target = hub.root / repo / name
                if not target.is_file():
                    return self._error(404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": commit})
                digest = hub.sha256(target)
                location = f"http://127.0.0.1:{hub.cdn.server_address[1]}/{repo}/{name}"
                headers = {"X-Repo-Commit": commit, "X-Linked-Etag": f'"{digest}"', "X-Linked-Size": str(target.stat().st_size)}
                self._send(302, {**headers, "ETag": '"git-blob"', "Location": location})

            def _cdn(self, path: str) -> None:
                target = hub.root / path.lstrip("/")
                if not target.is_file():
                    return self._send(404, {})
                size = target.stat().st_size
                first, _, last = (self.headers.get("Range") or f"bytes=0-{size - 1}").removeprefix("bytes=").partition("-")
                start, end = int(first), min(int(last or size - 1), size - 1)
                with open(target, "rb") as handle:
                    handle.seek(start)
                    body = handle.read(end - start + 1)
                ranged = "Range" in self.headers
                headers = {"Content-Range": f"bytes {start}-{end}/{size}"} if ranged else {}
                self._send(206 if ranged else 200, {**headers, "ETag": f'"{hub.sha256(target)}"', "Accept-Ranges": "bytes"}, body)

            def _info(self, repo: str) -> None:
                if self._allowed(repo):
                    siblings = [self._entry(repo, p) for p in hub.files(repo) or []]
                    files = [
                        {"rfilename": e["path"], "size": e["size"], "lfs": {"sha256": e["lfs"]["oid"], "size": e["size"]}} for e in siblings
                    ]
                    self._json({"id": repo, "modelId": repo, "sha": hub.commit(repo), "private": repo in hub.private, "siblings": files})

            def _tree(self, repo: str) -> None:
                if self._allowed(repo):
                    self._json([self._entry(repo, p) for p in hub.files(repo) or []])

            def _entry(self, repo: str, path: Path) -> dict[str, Any]:
                size, digest = path.stat().st_size, hub.sha256(path)
                relative = str(path.relative_to(hub.root / repo))
                return {
                    "type": "file",
                    "oid": digest[:40],
                    "size": size,
                    "path": relative,
                    "lfs": {"oid": digest, "size": size, "pointerSize": 134},
                }

            def _json(self, document: Any) -> None:
                self._send(200, {"Content-Type": "application/json"}, json.dumps(document).encode())

            def _error(self, status: int, code: str, message: str, extra: dict[str, str] | None = None) -> None:
                body = json.dumps({"error": message}).encode()
                self._send(
                    status, {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json", **(extra or {})}, body
                )

            def _send(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

        return Handler
