"""HTTP byte ranges of a remote file, bounded in bytes, in time and in retries.

Every remote byte the plugin reads comes through `RangeReader.read`: one `Range: bytes=a-b` request; redirects
followed (at most MAX_REDIRECTS, a loop refused); a 206 whose Content-Range answers the range asked for; the same
file size and validator (ETag, else Last-Modified) in every answer; the body read against the request's deadline
and the whole read's, so a server that drips bytes meets one of them. Connection errors, an answer cut short, a
request over its time and 5xx are retried with backoff while time remains; everything else is a RemoteError at
once: one line saying what the server did and what to do.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from pytest_dfqs import __version__
from pytest_dfqs.modelfile.units import human_bytes

MAX_REDIRECTS = 10
RETRIES = 3  # after the first attempt
BACKOFF_S = 0.5  # doubled after each retry
READ_BYTES = 1 << 16
REDIRECTS = (301, 302, 303, 307, 308)
CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
HEADER_TIMEOUT_OPTION = "--dfqs-header-timeout"


class RemoteError(Exception):
    """The remote file cannot be read as asked: one line, what the server did and what to do."""


class RemoteMissing(RemoteError):
    """The server has no such file (HTTP 404)."""


class _Transient(Exception):
    """A failure worth another attempt: the connection, a cut answer, a slow answer, the server's 5xx."""


@dataclass(frozen=True)
class Served:
    """What the server says of the file: its size and the validator that changes when the file does."""

    size: int
    validator: str | None


class RangeReader:
    """Byte ranges of the file at `url`; `deadline` (time.monotonic) bounds every read, retries included."""

    def __init__(
        self,
        url: str,
        deadline: float,
        request_timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        access_advice: str = "the plugin sends no credentials to this server: download the file and give its path",
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.url = url
        self.deadline = deadline
        self.request_timeout = request_timeout
        self.headers = dict(headers or {})  # sent to the first host only, never after a redirect to another one
        self.access_advice = access_advice
        self.progress = progress  # told the bytes received so far, as they arrive
        self.served: Served | None = None
        self.bytes_received = 0
        self.requests = 0
        self._location = url  # where the last redirects led: later ranges go there directly
        self._header_timeout = max(deadline - time.monotonic(), 0.0)

    def read(self, start: int, length: int) -> bytes:
        """Bytes [start, start + length) of the file (fewer where it ends), retried while time remains."""
        attempt = 0
        while True:
            try:
                return self._attempt(start, length)
            except _Transient as failure:
                attempt += 1
                pause = BACKOFF_S * 2 ** (attempt - 1)
                if attempt > RETRIES:
                    raise RemoteError(f"{failure} ({attempt} attempts)") from None
                if time.monotonic() + pause >= self.deadline:
                    raise RemoteError(
                        f"the header was not read within {self._header_timeout:.0f} s ({HEADER_TIMEOUT_OPTION} raises the limit): {failure}"
                    ) from None
                time.sleep(pause)

    def _attempt(self, start: int, length: int) -> bytes:
        url, seen = self._location, {self._location}
        for _ in range(MAX_REDIRECTS + 1):
            connection, response = self._get(url, start, length)
            try:
                if response.status not in REDIRECTS:
                    body = self._body(connection, response, start, length)
                    self._location = url
                    return body
                url = self._redirected(url, response)
            finally:
                connection.close()
            if url in seen:
                raise RemoteError(f"the server redirects in a loop (back to {url}): the file cannot be reached")
            seen.add(url)
        raise RemoteError(f"the server redirects more than {MAX_REDIRECTS} times: the file cannot be reached")

    @staticmethod
    def _redirected(url: str, response: http.client.HTTPResponse) -> str:
        location = response.getheader("Location")
        if not location:
            raise RemoteError(f"the server redirects (HTTP {response.status}) without saying where (no Location header)")
        return urljoin(url, location)

    def _get(self, url: str, start: int, length: int) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RemoteError(f"{url} is not an http(s) URL the plugin can read")
        timeout = max(min(self.request_timeout, self.deadline - time.monotonic()), 0.001)
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        connection = kind(parts.hostname, parts.port, timeout=timeout)
        headers = {
            "Range": f"bytes={start}-{start + length - 1}",
            "Accept-Encoding": "identity",
            "User-Agent": f"pytest-dfqs/{__version__}",
            **(self.headers if parts.hostname == urlsplit(self.url).hostname else {}),
        }
        fired = threading.Event()
        watchdog = threading.Timer(timeout, _abort, args=(connection, fired))  # a server that drips its headers meets it too
        watchdog.daemon = True
        watchdog.start()
        self.requests += 1
        try:
            connection.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), headers=headers)
            response = connection.getresponse()
        except ssl.SSLError as error:
            connection.close()
            raise RemoteError(f"{parts.hostname}: the TLS connection failed ({error.reason or error})") from None
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            silent = fired.is_set() or isinstance(error, TimeoutError)  # the watchdog or the socket's own timeout, whichever first
            why = f"no complete answer within {timeout:.2g} s" if silent else _reason(error, timeout)
            raise _Transient(f"{parts.hostname}:{parts.port or parts.scheme} did not answer ({why})") from None
        finally:
            watchdog.cancel()
        return connection, response

    def _body(self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse, start: int, length: int) -> bytes:
        status = response.status
        if status == 206:
            expected, total = self._content_range(response, start, length)
        elif status == 200 and start == 0 and _whole_file_fits(response, length):
            expected = total = int(response.getheader("Content-Length", "0"))
        else:
            raise self._refusal(response)
        encoding = (response.getheader("Content-Encoding") or "identity").lower()
        if encoding != "identity":
            raise RemoteError(f"the server encodes the bytes ({encoding}) although asked not to: ranges of the file cannot be read")
        self._same_file(Served(total, response.getheader("ETag") or response.getheader("Last-Modified")))
        return self._read_exactly(connection, response, expected)

    def _content_range(self, response: http.client.HTTPResponse, start: int, length: int) -> tuple[int, int]:
        """How many bytes the answer holds and the file's size, from a Content-Range that must answer the range asked."""
        header = response.getheader("Content-Range") or ""
        match = CONTENT_RANGE.fullmatch(header.strip())
        asked = f"bytes={start}-{start + length - 1}"
        if match is None:
            raise RemoteError(f"the server's Content-Range {header!r} does not say which bytes it sent (asked for {asked})")
        first, last, total = (int(group) for group in match.groups())
        if first != start or last < first or last > start + length - 1 or last >= total:
            raise RemoteError(f"the server sent {header!r} when asked for {asked}: not the bytes asked for")
        return last - first + 1, total

    def _refusal(self, response: http.client.HTTPResponse) -> Exception:
        status, reason = response.status, response.reason
        if status == 200:
            return RemoteError(
                "the server ignores Range requests (it answers 200 with the whole file): the header cannot be read"
                " without downloading the file; use --dfqs-download"
            )
        if status in (401, 403):
            return RemoteError(f"the server refuses access (HTTP {status} {reason}): {self.access_advice}")
        if status == 404:
            return RemoteMissing(f"not found on the server (HTTP 404): check the URL {self.url}")
        if status == 416:
            return RemoteError("the server has none of the bytes asked for (HTTP 416): the file is empty or shorter than its header")
        if 500 <= status < 600:
            return _Transient(f"the server failed (HTTP {status} {reason})")
        return RemoteError(f"the server answered HTTP {status} {reason} to a range request")

    def _same_file(self, served: Served) -> None:
        """Every answer must describe the file the first one did: the same size and validator."""
        before = self.served
        if before is None:
            self.served = served
            return
        if served.size != before.size:
            change = f"its size was {before.size:,} bytes, now {served.size:,}"
        elif before.validator is not None and served.validator != before.validator:
            change = f"its ETag was {before.validator}, now {served.validator}"
        else:
            return
        raise RemoteError(f"the file changed on the server while its header was read ({change}): run again")

    def _read_exactly(self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse, expected: int) -> bytes:
        body = bytearray()
        started = time.monotonic()
        request_deadline = min(started + self.request_timeout, self.deadline)
        while len(body) < expected:
            remaining = request_deadline - time.monotonic()
            if remaining <= 0:
                took = time.monotonic() - started
                raise _Transient(f"the server sent {human_bytes(len(body))} of {human_bytes(expected)} in {took:.1f} s (too slow)")
            if connection.sock is not None:
                connection.sock.settimeout(remaining)
            try:
                piece = response.read1(min(READ_BYTES, expected - len(body)))
            except (OSError, http.client.HTTPException) as error:
                why = _reason(error, remaining)
                raise _Transient(f"the connection broke {len(body):,} bytes into an answer of {expected:,} ({why})") from None
            if not piece:
                raise _Transient(f"the server closed the connection {len(body):,} bytes into an answer of {expected:,} (cut short)")
            body += piece
            self.bytes_received += len(piece)
            if self.progress is not None:
                self.progress(self.bytes_received)
        return bytes(body)


def _whole_file_fits(response: http.client.HTTPResponse, length: int) -> bool:
    """A server may answer a range that covers the whole file with the whole file (200): fine while it is that small."""
    size = response.getheader("Content-Length")
    return size is not None and size.isdigit() and int(size) <= length


def _abort(connection: http.client.HTTPConnection, fired: threading.Event) -> None:
    """Unblock a request past its time: shut its socket down (the blocked read then fails at once)."""
    fired.set()
    sock = connection.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _reason(error: BaseException, timeout: float) -> str:
    if isinstance(error, TimeoutError):
        return f"no answer within {timeout:.2g} s"
    return getattr(error, "strerror", None) or str(error) or type(error).__name__
