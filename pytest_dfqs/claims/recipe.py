"""Quantization recipes: llama-quantize's --tensor-type-file, checked against the tensors of a file.

The format is llama-quantize's own (tools/quantize/quantize.cpp): entries
`pattern=type` separated by whitespace, the pattern lower-cased and searched
in each tensor's name as a regular expression (std::regex_search), the first
matching entry deciding the tensor's type, type names case-insensitive. The
format has no comments: a word without '=' is an error, as in llama-quantize.

llama-quantize applies an entry only to a tensor it quantizes at all
(llama-quant.cpp, tensor_allows_quantization): 2D and 3D tensors named
`*weight`, but not norms, the expert router (`ffn_gate_inp`) or DeepSeek-V4's
routing table (`ffn_gate_tid2eid`). Other tensors keep their type whatever the
recipe says; they are reported as not governed, not as violations. A tensor
whose rows do not divide into the wanted type's blocks gets llama-quantize's
fallback type; it is reported as such, not as a violation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

from pytest_dfqs.modelfile.header import GGUFHeader, TensorInfo
from pytest_dfqs.verdict import Status

NOT_QUANTIZED = ("_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight")
LISTED = 20  # mismatching tensors named in the summary; the evidence lists all


class RecipeError(Exception):
    """A recipe llama-quantize would refuse: names the file, the entry and the problem."""


def ggml_type_named(name: str) -> GGMLQuantizationType | None:
    """A ggml type by its name as cards and llama.cpp write it (q8_0, IQ1_M, f16), case-insensitive (ggml_type_name)."""
    return GGMLQuantizationType.__members__.get(name.upper())


@dataclass(frozen=True)
class Rule:
    pattern: str
    type: GGMLQuantizationType
    regex: re.Pattern[str]


@dataclass(frozen=True)
class Recipe:
    path: Path
    rules: tuple[Rule, ...]

    @property
    def name(self) -> str:
        return self.path.stem

    def rule_for(self, tensor_name: str) -> Rule | None:
        """The first rule whose pattern occurs in the name, as llama-quantize picks it."""
        return next((rule for rule in self.rules if rule.regex.search(tensor_name)), None)


def read_recipe(path: Path) -> Recipe:
    """Read a --tensor-type-file; RecipeError names the file, the entry and the problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RecipeError(f"{path}: cannot be read ({getattr(error, 'strerror', None) or error})") from None
    entries = text.split()
    if not entries:
        raise RecipeError(f"{path}: no pattern=type entries")
    return Recipe(path, tuple(_rule(path, entry) for entry in entries))


def _rule(path: Path, entry: str) -> Rule:
    pattern, sep, type_name = entry.partition("=")
    if not sep or not pattern or not type_name:
        raise RecipeError(f"{path}: {entry!r} is not pattern=type")
    ggml_type = ggml_type_named(type_name)
    if ggml_type is None:
        raise RecipeError(f"{path}: {entry!r}: {type_name!r} is not a ggml type")
    try:
        regex = re.compile(pattern.lower())
    except re.error as error:
        raise RecipeError(f"{path}: {entry!r}: the pattern is not a regular expression ({error})") from None
    return Rule(pattern.lower(), ggml_type, regex)


def quantizable(tensor: TensorInfo) -> bool:
    """Whether llama-quantize would quantize this tensor at all (tensor_allows_quantization's common rules)."""
    return len(tensor.shape) >= 2 and tensor.name.endswith("weight") and not any(part in tensor.name for part in NOT_QUANTIZED)


def _fits(tensor: TensorInfo, ggml_type: GGMLQuantizationType) -> bool:
    """Rows divide into the type's blocks; else llama-quantize falls back to another type."""
    block, _ = GGML_QUANT_SIZES[ggml_type]
    return tensor.shape[0] % block == 0


def check_recipe(recipe: Recipe, header: GGUFHeader) -> tuple[Status, str, dict[str, Any]]:
    """Every governed tensor's type against the recipe: MET when none differs, NOT MET listing those that do."""
    mismatches: list[dict[str, Any]] = []
    fallbacks: list[dict[str, Any]] = []
    counts = {"governed": 0, "not_governed": 0, "unmatched": 0, "fallback": 0}
    for tensor in header.tensors:
        rule = recipe.rule_for(tensor.name)
        kind = _classify(tensor, rule)
        counts[kind] += 1
        if rule is not None and kind in ("governed", "fallback") and tensor.ggml_type != rule.type:
            entry = {"tensor": tensor.name, "expected": rule.type.name.lower(), "found": tensor.type_name.lower(), "rule": rule.pattern}
            (mismatches if kind == "governed" else fallbacks).append(entry)
    evidence = {"recipe": str(recipe.path), "rules": len(recipe.rules), **counts, "mismatches": mismatches, "fallbacks": fallbacks}
    scope = f"{counts['governed']} tensors governed by {len(recipe.rules)} rules of {recipe.path.name}"
    if not counts["governed"]:
        return Status.NOT_MET, f"no tensor of the file is governed by a rule of {recipe.path.name}", evidence
    if not mismatches:
        return Status.MET, f"{scope}, every one of the recipe's type", evidence
    listed = "; ".join(f"{m['tensor']} {m['found']} (recipe: {m['expected']})" for m in mismatches[:LISTED])
    more = f"; and {len(mismatches) - LISTED} more" if len(mismatches) > LISTED else ""
    return Status.NOT_MET, f"{len(mismatches)} of {scope} differ: {listed}{more}", evidence


def _classify(tensor: TensorInfo, rule: Rule | None) -> str:
    if rule is None:
        return "unmatched"
    if not quantizable(tensor):
        return "not_governed"
    if tensor.ggml_type != rule.type and not _fits(tensor, rule.type):
        return "fallback"
    return "governed"
