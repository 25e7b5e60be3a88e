"""Claims files: what a model card or a spec says a GGUF file is, as data the suite can check.

A claims file (TOML) names its sources and lists claims; each claim states one
fact, written the way cards write it:

    claims_format = 1
    title = "DeepSeek-V4-Flash-IQ1_S-XL.gguf, as its spec and its card describe it"
    about = "DeepSeek-V4-Flash-IQ1_S-XL.gguf"

    [sources]
    spec = "DFQS v1.0 specification, DOI 10.57967/hf/8853"

    [[claim]]
    id = "spec-active-parameters"      # optional: the fact's name when it is claimed once
    fact = "active_parameters"
    value = "13B"                      # its written precision sets the interval: 12.5B to 13.5B
    source = "spec"                    # a key of [sources]
    where = "section 5: Active Params | 13B"
    clause = "DFQS-5.2"                # optional: the catalogue clause this claim decides

Everything is checked when the file is read: an unknown fact, a value that
cannot be read as its fact's kind, a repeated id. `ClaimsError` names the file,
the claim and the problem; the plugin turns it into a usage error.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gguf.constants import LlamaFileType

from pytest_dfqs.catalogue import CONFORMANCE_DIR, load_catalogue
from pytest_dfqs.modelfile.units import read_quantity

from .recipe import RecipeError, ggml_type_named, read_recipe

CLAIMS_FORMAT = 1
CLAIMS_DIR = CONFORMANCE_DIR / "claims"
RECIPES_DIR = CONFORMANCE_DIR / "recipes"
REFERENCE_CLAIMS = CLAIMS_DIR / "deepseek-v4-flash-iq1_s-xl.toml"  # the reference profile: its clause-tagged claims
HEX_DIGEST = re.compile(r"[0-9a-f]{64}")

# fact -> the kind of its value: how it is read and how it is compared
FACT_KINDS: dict[str, str] = {
    "architecture": "text",
    "mixture_of_experts": "bool",
    "total_parameters": "parameters",
    "active_parameters": "parameters",
    "expert_count": "count",
    "expert_used_count": "count",
    "expert_shared_count": "count",
    "block_count": "count",
    "context_length": "count",
    "tensor_count": "count",
    "split_count": "count",
    "file_size": "bytes",
    "host_memory": "bytes",
    "sha256": "digest",
    "quantization": "file_type",
    "dtypes": "dtypes",
    "code_score": "score",
    "reasoning_score": "score",
    "cpu_tokens_per_sec": "throughput",
    "tensor_types": "recipe",
    "routing_fidelity": "fidelity",
}
QUANTITY_KINDS = {
    "parameters": "count",
    "count": "count",
    "bytes": "bytes",
    "score": "fraction",
    "throughput": "count",
    "fidelity": "fraction",
}
# facts a check of a higher tier measures: (the tier, the check whose evidence the claim is compared with)
MEASURED: dict[str, tuple[str, str]] = {
    "code_score": ("eval", "metrics-record"),
    "reasoning_score": ("eval", "metrics-record"),
    "cpu_tokens_per_sec": ("eval", "metrics-record"),
    "routing_fidelity": ("runtime", "routing-fidelity"),
}
CLAIM_KEYS = frozenset({"id", "fact", "value", "source", "where", "clause", "tolerance", "hardware", "checksums", "note"})


class ClaimsError(Exception):
    """A claims file that cannot be used: says which file, which claim, what is wrong."""


@dataclass(frozen=True)
class Claim:
    """One fact a source states about a model file."""

    id: str
    fact: str
    value: Any
    source: str = ""
    where: str = ""
    clause: str | None = None
    tolerance: str | None = None
    hardware: str | None = None
    checksums: str | None = None  # a sha256sum-format file beside the model that holds the claimed digest
    note: str = ""

    @property
    def kind(self) -> str:
        return FACT_KINDS[self.fact]

    @property
    def tier(self) -> str:
        """The tier that can decide the claim: the eval tier measures scores and throughput, the runtime tier fidelity."""
        return MEASURED[self.fact][0] if self.fact in MEASURED else "static"

    @property
    def measured_by(self) -> str | None:
        """The check whose evidence the claim is compared with, when a higher tier measures it."""
        return MEASURED[self.fact][1] if self.fact in MEASURED else None

    @property
    def claimed(self) -> str:
        """The claim as its source wrote it."""
        if isinstance(self.value, bool):
            return "a Mixture-of-Experts model" if self.value else "a dense model"
        if isinstance(self.value, dict):
            return ", ".join(f"{name} {count}" for name, count in self.value.items())
        if self.checksums:
            return f"the digest in {self.checksums}"
        if self.kind == "recipe":
            return f"the tensor types of {Path(str(self.value)).name}"
        return str(self.value)


@dataclass(frozen=True)
class ClaimsFile:
    path: Path
    title: str
    about: str
    sources: dict[str, str]
    claims: tuple[Claim, ...] = field(default_factory=tuple)
    recipe: bool = False  # a recipe given on its own (--dfqs-recipe), as a claims file of one claim

    @property
    def name(self) -> str:
        """The short name test ids and tables use: the file's stem ('recipe-' before a recipe's)."""
        return f"recipe-{self.path.stem}" if self.recipe else self.path.stem

    def source_text(self, claim: Claim) -> str:
        """Who makes the claim, in words."""
        return self.sources.get(claim.source, claim.source)

    def for_clause(self, clause_id: str) -> Claim:
        found = [claim for claim in self.claims if claim.clause == clause_id]
        if len(found) != 1:
            raise ClaimsError(f"{self.path}: {len(found)} claims decide {clause_id}; exactly one must")
        return found[0]


def read_claims_file(path: Path) -> ClaimsFile:
    """Read and check a claims file; ClaimsError says what is wrong and where."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ClaimsError(f"{path}: cannot be read ({getattr(error, 'strerror', None) or error})") from None
    except tomllib.TOMLDecodeError as error:
        raise ClaimsError(f"{path}: not TOML ({error})") from None
    if data.get("claims_format") != CLAIMS_FORMAT:
        raise ClaimsError(f"{path}: claims_format must be {CLAIMS_FORMAT} (found {data.get('claims_format')!r})")
    sources = data.get("sources", {})
    if not isinstance(sources, dict) or not all(isinstance(v, str) for v in sources.values()):
        raise ClaimsError(f"{path}: [sources] must map names to descriptions")
    entries = data.get("claim", [])
    if not isinstance(entries, list) or not entries:
        raise ClaimsError(f"{path}: no [[claim]] entries")
    claims = tuple(_claim(path, index, entry, sources) for index, entry in enumerate(entries, 1))
    _check_ids(path, claims)
    return ClaimsFile(path, str(data.get("title", path.stem)), str(data.get("about", "")), sources, claims)


def _claim(path: Path, index: int, entry: Any, sources: dict[str, str]) -> Claim:
    where = f"{path}: claim {index}"
    if not isinstance(entry, dict):
        raise ClaimsError(f"{where}: not a table")
    unknown = sorted(set(entry) - CLAIM_KEYS)
    if unknown:
        raise ClaimsError(f"{where}: unknown key {', '.join(unknown)} (known: {', '.join(sorted(CLAIM_KEYS))})")
    fact = entry.get("fact")
    if fact not in FACT_KINDS:
        raise ClaimsError(f"{where}: fact {fact!r} is not one of {', '.join(FACT_KINDS)}")
    claim = Claim(
        id=str(entry.get("id", fact)),
        fact=fact,
        value=_recipe_path(path, entry.get("value")) if FACT_KINDS[fact] == "recipe" else entry.get("value"),
        source=str(entry.get("source", "")),
        where=str(entry.get("where", "")),
        clause=entry.get("clause"),
        tolerance=_optional_text(entry, "tolerance"),
        hardware=_optional_text(entry, "hardware"),
        checksums=_optional_text(entry, "checksums"),
        note=str(entry.get("note", "")),
    )
    where = f"{where} ({claim.id})"
    if claim.clause is not None and claim.clause not in {clause.id for clause in load_catalogue().clauses}:
        raise ClaimsError(f"{where}: clause {claim.clause!r} is not a clause of the catalogue")
    if claim.source and claim.source not in sources:
        raise ClaimsError(f"{where}: source {claim.source!r} is not named in [sources]")
    problem = value_problem(claim)
    if problem:
        raise ClaimsError(f"{where}: {problem}")
    return claim


def _recipe_path(path: Path, value: Any) -> str | None:
    """A recipe named by a claims file: beside the claims file, or one shipped in conformance/recipes."""
    if not isinstance(value, str):
        return None
    beside = path.parent / value
    return str(beside if beside.is_file() else shipped_file(value, RECIPES_DIR, ".txt"))


def _optional_text(entry: dict[str, Any], key: str) -> str | None:
    value = entry.get(key)
    return None if value is None else str(value)


def _check_ids(path: Path, claims: tuple[Claim, ...]) -> None:
    ids = [claim.id for claim in claims]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ClaimsError(f"{path}: claim id {', '.join(repeated)} appears more than once; give each such claim its own id")


def value_problem(claim: Claim) -> str | None:
    """Why the claim's value cannot be read as its fact's kind; None when it can."""
    kind, value = claim.kind, claim.value
    if kind == "digest":
        return _digest_problem(claim)
    if value is None:
        return "has no value" if kind != "recipe" else "tensor_types needs value = a recipe file (pattern=type entries)"
    if kind in QUANTITY_KINDS:
        return _quantity_problem(claim)
    if kind == "bool" and not isinstance(value, bool):
        return f"value {value!r} must be true or false"
    if kind == "text" and not isinstance(value, str):
        return f"value {value!r} must be a string"
    if kind == "file_type":
        return (
            None
            if file_type_named(str(value)) is not None
            else f"quantization {value!r} is not a llama.cpp file type (such as Q8_0, IQ1_S)"
        )
    if kind == "dtypes":
        return _dtypes_problem(value)
    if kind == "recipe":
        return _recipe_problem(str(value))
    return None


def _recipe_problem(path: str) -> str | None:
    try:
        read_recipe(Path(path))
    except RecipeError as error:
        return f"tensor_types: {error}"
    return None


def _quantity_problem(claim: Claim) -> str | None:
    if isinstance(claim.value, bool) or not isinstance(claim.value, (str, int, float)):
        return f"value {claim.value!r} must be a number or a string such as '284B'"
    if claim.fact == "cpu_tokens_per_sec" and not claim.hardware:
        return "a throughput claim must say the hardware it was measured on (hardware = '...')"
    try:
        quantity(claim)
    except ValueError as error:
        return str(error)
    return None


def _digest_problem(claim: Claim) -> str | None:
    if claim.checksums:
        return None if claim.value is None else "give either value or checksums, not both"
    if not isinstance(claim.value, str) or not HEX_DIGEST.fullmatch(claim.value.lower()):
        return f"sha256 {claim.value!r} must be 64 hexadecimal digits (or name a checksums file: checksums = 'checksums.txt')"
    return None


def _dtypes_problem(value: Any) -> str | None:
    if not isinstance(value, dict) or not value:
        return "dtypes must be a table of ggml type = tensor count"
    unknown = [name for name in value if ggml_type_named(name) is None]
    if unknown:
        return f"dtypes: {', '.join(unknown)} is not a ggml type"
    counts = [count for count in value.values() if isinstance(count, bool) or not isinstance(count, int) or count < 0]
    return f"dtypes: tensor counts must be whole numbers (found {counts[0]!r})" if counts else None


def quantity(claim: Claim) -> Any:
    """The claim's value read as a WrittenQuantity of its kind, with the claim's tolerance if it gives one."""
    kind = QUANTITY_KINDS[claim.kind]
    tolerance = read_quantity(claim.tolerance, kind, 0.0).value if claim.tolerance else None
    return read_quantity(str(claim.value), kind, tolerance)


def file_type_named(name: str) -> LlamaFileType | None:
    """A llama.cpp file type by its name: 'IQ1_S', 'MOSTLY_IQ1_S', 'Q8_0', 'F16', 'ALL_F32'."""
    key = name.upper().replace("-", "_")
    members = LlamaFileType.__members__
    return members.get(key) or members.get(f"MOSTLY_{key}") or members.get(f"ALL_{key}")


def recipe_claims(path: Path) -> ClaimsFile:
    """A recipe given on its own (--dfqs-recipe) as a claims file of one claim: every tensor has its recipe type."""
    try:
        read_recipe(path)
    except RecipeError as error:
        raise ClaimsError(str(error)) from None
    claim = Claim("tensor-types", "tensor_types", str(path), where=f"llama-quantize --tensor-type-file {path.name}")
    return ClaimsFile(path, f"quantization recipe {path.name}", "", {}, (claim,), recipe=True)


def load_claims(value: str, recipe: bool = False) -> ClaimsFile:
    """A claims file (or a recipe) named as the user names it: a path, or the name of one shipped with pytest-dfqs."""
    folder, suffix = (RECIPES_DIR, ".txt") if recipe else (CLAIMS_DIR, ".toml")
    path = shipped_file(value, folder, suffix)
    if not path.is_file():
        problem = "is not a file" if path.exists() else "does not exist"
        raise ClaimsError(f"{path} {problem} (shipped with pytest-dfqs: {', '.join(shipped_names(folder, suffix))})")
    return recipe_claims(path) if recipe else read_claims_file(path)


def shipped_file(value: str, folder: Path, suffix: str) -> Path:
    """A path as given, or the name of a file shipped in `folder` ('ds4-q2' for conformance/recipes/ds4-q2.txt)."""
    given = Path(value).expanduser()
    shipped = folder / f"{value}{suffix}"
    return shipped if not given.exists() and "/" not in value and shipped.is_file() else given


def shipped_names(folder: Path, suffix: str) -> list[str]:
    return sorted(path.stem for path in folder.glob(f"*{suffix}"))
