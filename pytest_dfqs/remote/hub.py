"""Models on the Hugging Face Hub: `hf://owner/repo/path.gguf`, `hf://owner/repo@revision/path.gguf` and
`hf://owner/repo:QUANT` (the file llama.cpp's `-hf owner/repo:QUANT` picks).

huggingface_hub is the client (`pip install 'pytest-dfqs[hub]'`), with its conventions: HF_TOKEN, HF_ENDPOINT,
HF_HOME. What the Hub states without a download comes from its `resolve` endpoint (huggingface_hub's
`get_hf_file_metadata`): the commit the revision resolved to, the file's size and, for an LFS file, its SHA-256
(`X-Linked-Etag`), and where its bytes are (the CDN URL the range reads then go to).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_dfqs.modelfile.units import human_bytes

from .download import Download, check_space, hashed_once
from .header_fetch import FetchedHeader
from .names import HF_SCHEME, HubName, parse_hub_name
from .ranges import RemoteError, RemoteMissing
from .source import Located, Source

DEFAULT_QUANTS = ("Q4_K_M", "Q8_0")  # llama.cpp's -hf without a tag: these, else the first GGUF
TOKEN_ADVICE = "needs a token: set HF_TOKEN (or log in with `hf auth login`)"


@dataclass(frozen=True)
class HubFile:
    """One file as the Hub states it at a resolved commit."""

    repo: str
    path: str
    commit: str
    size: int
    sha256: str | None  # the LFS SHA-256; None for a file kept in git itself
    location: str  # where its bytes are served (the CDN, for an LFS file)

    @property
    def url(self) -> str:
        return f"{HF_SCHEME}{self.repo}@{self.commit}/{self.path}"


def resolve(name: HubName) -> HubFile:
    """The file the name means, as the Hub states it now."""
    path = name.path if name.path is not None else choose_quant(_repo_files(name), name.quant or "")
    return stat(name.repo, name.revision, path)


def stat(repo: str, revision: str, path: str) -> HubFile:
    """What the Hub's resolve endpoint states of one file; a file it does not have raises RemoteMissing."""
    hub = _client()
    try:
        metadata = hub.get_hf_file_metadata(hub.hf_hub_url(repo, path, revision=revision))
    except Exception as error:
        raise _hub_error(error, f"{repo}@{revision}/{path}") from None
    if metadata.commit_hash is None or metadata.size is None or metadata.location is None:
        raise RemoteError(f"the Hub states no commit or size for {repo}/{path} (is HF_ENDPOINT a Hub?)")
    etag = (metadata.etag or "").strip('"')
    sha256 = etag if re.fullmatch(r"[0-9a-f]{64}", etag) else None
    return HubFile(repo, path, metadata.commit_hash, metadata.size, sha256, metadata.location)


def choose_quant(files: list[str], quant: str) -> str:
    """The file llama.cpp's -hf picks: the first shard or file whose name has the tag; without a tag Q4_K_M, Q8_0, the first."""
    ggufs = sorted(f for f in files if f.lower().endswith(".gguf") and not _is_later_shard(f) and "mmproj" not in f.lower())
    for tag in (quant,) if quant else DEFAULT_QUANTS:
        chosen = [f for f in ggufs if tag.lower() in f.rsplit("/", 1)[-1].lower()]
        if chosen:
            return chosen[0]
    if ggufs and not quant:
        return ggufs[0]
    listed = ", ".join(ggufs[:8]) or "none"
    raise RemoteError(f"no GGUF file in the repository matches {quant or 'Q4_K_M or Q8_0'} (its GGUF files: {listed})")


def _is_later_shard(path: str) -> bool:
    match = re.search(r"-(\d{5})-of-\d{5}\.gguf$", path)
    return match is not None and int(match[1]) != 1


def _repo_files(name: HubName) -> list[str]:
    hub = _client()
    try:
        return list(hub.list_repo_files(name.repo, revision=name.revision))
    except Exception as error:
        raise _hub_error(error, f"{name.repo}@{name.revision}") from None


def _client() -> Any:
    try:
        import huggingface_hub
    except ImportError:
        raise RemoteError("hf:// models need huggingface_hub: pip install 'pytest-dfqs[hub]'") from None
    return huggingface_hub


def _hub_error(error: Exception, what: str) -> RemoteError:
    """One line for what the Hub answered (huggingface_hub's error classes, found by name: they moved between versions)."""
    kind = type(error).__name__
    if kind in ("GatedRepoError",):
        return RemoteError(f"{what}: the repository is gated: accept its terms on the Hub, then {TOKEN_ADVICE}")
    if kind in ("RepositoryNotFoundError",):
        return RemoteError(f"{what}: no such repository on the Hub, or it is private and {TOKEN_ADVICE}")
    if kind in ("RevisionNotFoundError",):
        return RemoteError(f"{what}: the repository has no such revision")
    if kind in ("EntryNotFoundError", "RemoteEntryNotFoundError"):
        return RemoteMissing(f"{what}: the repository has no such file")
    status = getattr(getattr(error, "response", None), "status_code", None)
    if status in (401, 403):
        return RemoteError(f"{what}: the Hub refuses access (HTTP {status}): {TOKEN_ADVICE}")
    return RemoteError(f"{what}: the Hub could not be asked ({kind}: {str(error).splitlines()[0] if str(error) else 'no message'})")


class HubSource(Source):
    """A model on the Hub: resolved once to a commit; its bytes and its shards' read where the Hub says they are."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.hub_name = parse_hub_name(name)
        self.file: HubFile | None = None

    def locate(self) -> Located:
        hub_file = self.file = resolve(self.hub_name)
        return Located(hub_file.path.rsplit("/", 1)[-1], hub_file.location, hub_file.sha256)

    def sibling(self, located: Located, name: str) -> Located:
        assert self.file is not None  # located first
        other = stat(self.file.repo, self.file.commit, self._repo_path(name))
        return Located(name, other.location, other.sha256)

    def key(self) -> str:
        return self.file.url if self.file is not None else self.name

    def details(self) -> dict[str, Any]:
        return {"revision": self.hub_name.revision, "commit": self.file.commit if self.file else None}

    def whole(
        self, where: Located, destination: Path, header: FetchedHeader, announce: Callable[[str], None], download: bool
    ) -> Download | None:
        """The file in the Hub's own cache (HF_HOME), where huggingface_hub and llama.cpp's -hf find it too: there already,
        or brought by hf_hub_download when asked for; hashed once, and compared with the Hub's SHA-256."""
        assert self.file is not None  # located first
        hub, path = _client(), self._repo_path(where.name)
        cached = hub.try_to_load_from_cache(self.file.repo, path, revision=self.file.commit)
        received = 0
        if not isinstance(cached, str):
            if not download:
                return None
            check_space(Path(hub.constants.HF_HUB_CACHE), header.size, where.name)
            announce(f"downloading {where.name} ({human_bytes(header.size)}) from the Hub into its cache")
            try:
                cached = hub.hf_hub_download(self.file.repo, path, revision=self.file.commit)
            except Exception as error:
                raise _hub_error(error, f"{self.file.repo}@{self.file.commit}/{path}") from None
            received = header.size
        digest = hashed_once(Path(cached), destination, header.size)
        if where.stated_sha256 is not None and digest != where.stated_sha256:
            raise RemoteError(
                f"{cached}: its SHA-256 is {digest}, not the {where.stated_sha256} the Hub states: delete it and download again"
            )
        return Download(Path(cached), self.name, header.size, header.validator, digest, received)

    def _repo_path(self, name: str) -> str:
        assert self.file is not None
        folder = self.file.path.rpartition("/")[0]
        return f"{folder}/{name}" if folder else name


def source_of(name: str) -> Source:
    """The source a remote model's name says: the Hub for hf://, else the URL itself."""
    return HubSource(name) if name.startswith(HF_SCHEME) else Source(name)
