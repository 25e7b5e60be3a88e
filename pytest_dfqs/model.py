"""The model under test: one GGUF file and everything learned about it once.

Header, facts, digest and check findings are computed at most once per model
per session, whichever test asks first; a check named by several clauses runs
once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .facts import ModelFacts, model_facts
from .gguf_header import GGUFHeader, HeaderError, read_header
from .integrity import Digest, DigestCache, ExpectedDigest, Progress, expected_digest, file_sha256
from .verdict import Finding


@dataclass(frozen=True)
class IntegrityOptions:
    sha256: str | None = None
    checksums: dict[str, str] | None = None
    checksums_source: str = ""
    reference_profile: bool = False


class ModelUnderTest:
    def __init__(
        self,
        path: Path,
        label: str,
        integrity: IntegrityOptions = IntegrityOptions(),
        cache: DigestCache | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.path = path
        self.label = label
        self.integrity = integrity
        self._cache = cache
        self._progress = progress
        self._header: GGUFHeader | HeaderError | None = None
        self._digest: Digest | None = None
        self._findings: dict[str, Finding] = {}

    def header(self) -> GGUFHeader:
        """The parsed header; raises the same HeaderError on every call for a bad file."""
        if self._header is None:
            try:
                self._header = read_header(self.path)
            except HeaderError as error:
                self._header = error
        if isinstance(self._header, HeaderError):
            raise self._header
        return self._header

    def facts(self) -> ModelFacts:
        return model_facts(self.header())

    def expected_digest(self) -> ExpectedDigest | None:
        options = self.integrity
        return expected_digest(self.path, options.sha256, options.checksums, options.checksums_source, options.reference_profile)

    def digest(self) -> Digest:
        if self._digest is None:
            self._digest = file_sha256(self.path, self._cache, self._progress)
        return self._digest

    @property
    def sha256(self) -> str | None:
        """The digest if it was computed in this session, without computing it."""
        return self._digest.sha256 if self._digest else None

    def finding(self, check_id: str) -> Finding:
        from .checks import run_check

        if check_id not in self._findings:
            self._findings[check_id] = run_check(check_id, self)
        return self._findings[check_id]
