"""What llama.cpp's loader refuses, predicted from the header: the static half of DFQS-3.1's judge.

The rules are llama.cpp's own, read out of the source that the pinned
llama-cpp-python vendors (conformance/llama-cpp-loader.json, derived by
tests/llama_cpp_source.py): the architectures and tokenizers it knows, the
hyperparameter keys each architecture cannot load without, the tensors each
architecture's loader can create (a file holding any other tensor is refused),
the shapes it checks where the header states them (tensor_shapes),
its rope dimension rule, the expert gating function an architecture insists on,
the BPE tokenizers it cannot load without merges, the block and expert counts it
asserts on, and its assertion that vocabulary tokens are unique. The rules read
from the table follow that llama.cpp: when another llama-cpp-python is
installed, they are only reported, and the runtime tier's load decides; the
assertions on counts and tokens hold for any llama.cpp.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from typing import Any

from gguf.constants import GGUFValueType, Keys

from pytest_dfqs.catalogue import CONFORMANCE_DIR
from pytest_dfqs.modelfile.facts import block_index, blocks_present, metadata_count
from pytest_dfqs.modelfile.header import ArrayValue, GGUFHeader, array_strings

from . import tensor_shapes
from .tensor_shapes import ExpectedShape, expected_shapes, hyperparameter_values, names_pattern

LOADER_FILE = CONFORMANCE_DIR / "llama-cpp-loader.json"
MAX_LISTED = 5


@dataclass(frozen=True)
class LoaderTable:
    llama_cpp_python: str
    known_architectures: frozenset[str]
    known_tokenizers: frozenset[str]
    max_experts: int
    max_layers: int
    tensors: dict[str, re.Pattern[str]]  # architecture -> the names its loader can create
    required_keys: dict[str, tuple[str, ...]]  # architecture -> the keys its full load reads unconditionally
    shapes: dict[str, tuple[ExpectedShape, ...]]  # architecture -> the shapes its loader checks
    shape_fields: dict[str, dict[str, str]]  # architecture -> hyperparameter the shapes name -> its metadata key
    rope_checked: frozenset[str]  # architectures whose rope.dimension_count must equal the key length
    gating: dict[str, int]  # architecture -> the only expert_gating_func its loader accepts
    key_types: dict[str, dict[str, dict[str, Any]]]  # "*" or architecture -> key ("%s." for any architecture) -> how it is read
    required_tensors: dict[str, dict[str, Any]]  # architecture -> what its loader creates without TENSOR_NOT_REQUIRED, and fields
    graph_assertions: dict[str, list[str]]  # architecture -> comparisons of hyperparameters its graph asserts
    pre_tokenizers: dict[str, frozenset[str]]  # BPE tokenizer model -> the tokenizer.ggml.pre values llama.cpp knows
    needs_merges: dict[str, frozenset[str]]  # tokenizer model -> the tokenizer.ggml.pre values exempt

    @property
    def follows_installed(self) -> bool:
        """The installed llama-cpp-python is the one the table was read from (or none is installed)."""
        try:
            return metadata.version("llama-cpp-python") == self.llama_cpp_python
        except metadata.PackageNotFoundError:
            return True


@lru_cache(maxsize=1)
def loader_table() -> LoaderTable:
    document: dict[str, Any] = json.loads(LOADER_FILE.read_text(encoding="utf-8"))
    return LoaderTable(
        document["llama_cpp_python"],
        frozenset(document["known_architectures"]),
        frozenset(document["known_tokenizers"]),
        document["max_experts"],
        document["max_layers"],
        {arch: names_pattern(names) for arch, names in document["architectures"].items()},
        {arch: tuple(keys) for arch, keys in document["required_keys"].items()},
        {arch: expected_shapes(shapes["tensors"]) for arch, shapes in document["shapes"].items()},
        {arch: shapes["fields"] for arch, shapes in document["shapes"].items()},
        frozenset(document["rope_dimension_is_head_size"]),
        document["expert_gating_func"],
        document["key_types"],
        document["required_tensors"],
        document["graph_assertions"],
        {model: frozenset(names) for model, names in document["pre_tokenizers"].items()},
        {model: frozenset(exempt) for model, exempt in document["tokenizers_needing_merges"].items()},
    )


def architecture_problems(header: GGUFHeader, table: LoaderTable) -> list[str]:
    """An architecture or tokenizer llama.cpp does not know, a key it cannot do without, a tensor it would not create."""
    tokenizer = header.metadata.get(Keys.Tokenizer.MODEL)
    if isinstance(tokenizer, str) and tokenizer not in table.known_tokenizers:
        return [f"{Keys.Tokenizer.MODEL} is {tokenizer!r}: llama.cpp refuses it (unknown tokenizer)"]
    arch = header.architecture
    if arch is None:
        return []  # `standalone` says the architecture is missing
    if arch not in table.known_architectures:
        return [f"llama.cpp knows no architecture {arch!r} (it refuses: unknown model architecture)"]
    missing = [key for key in table.required_keys.get(arch, ()) if key not in header.metadata]
    if missing:
        return [f"llama.cpp refuses a {arch} model without {missing[0]} (key not found in model)" + _more(missing)]
    pattern = table.tensors.get(arch)
    if pattern is None:
        return []
    unknown = [t.name for t in header.tensors if not pattern.fullmatch(t.name)]
    if not unknown:
        return []
    shown = ", ".join(repr(name) for name in unknown[:MAX_LISTED])
    return [f"{len(unknown)} tensor(s) that llama.cpp's {arch} loader never creates, so it refuses the file: {shown}" + _more(unknown)]


def _more(items: list[str], shown: int = MAX_LISTED) -> str:
    """What a message listing the first `shown` items says of the rest."""
    return f" and {len(items) - shown} more" if len(items) > shown else ""


def shape_problems(header: GGUFHeader, table: LoaderTable) -> list[str]:
    """A tensor whose shape is not the one llama.cpp's loader checks (check_tensor_dims), where the table states it."""
    arch = header.architecture or ""
    return tensor_shapes.shape_problems(header, table.shapes.get(arch, ()), table.shape_fields.get(arch, {}))


def merges_problems(header: GGUFHeader, table: LoaderTable) -> list[str]:
    """A BPE tokenizer without its merges, or with merges that are not a list of strings: llama.cpp throws."""
    model, merges = header.metadata.get(Keys.Tokenizer.MODEL), header.metadata.get(Keys.Tokenizer.MERGES)
    if not isinstance(model, str) or model not in table.needs_merges:
        return []
    if merges is None and header.metadata.get(Keys.Tokenizer.PRE) not in table.needs_merges[model]:
        return [f"a {model!r} tokenizer without {Keys.Tokenizer.MERGES}: llama.cpp refuses it (cannot find tokenizer merges)"]
    if merges is not None and not (isinstance(merges, ArrayValue) and merges.element_type == GGUFValueType.STRING):
        return [f"{Keys.Tokenizer.MERGES} is not an array of strings: llama.cpp refuses it (invalid gguf type)"]
    return []


def required_tensor_problems(header: GGUFHeader, table: LoaderTable) -> list[str]:
    """A tensor the architecture's loader creates without TENSOR_NOT_REQUIRED, missing (check_tensor_dims: not found).

    Each requirement holds under conditions the table states (another tensor present or
    absent, a comparison of hyperparameters, per block where they are per-layer values);
    where a condition cannot be decided from the header, the requirement is not applied. One
    created with flags other than 0 is required only of a block that holds another tensor so
    created (deepseek4's MTP-only files leave whole blocks out).
    """
    arch = header.architecture or ""
    blocks = metadata_count(header.arch_value(Keys.LLM.BLOCK_COUNT))
    required = table.required_tensors.get(arch, {"tensors": [], "fields": {}})
    if blocks is None or not required["tensors"]:
        return []
    names = {t.name for t in header.tensors}
    nextn = metadata_count(header.arch_value("{arch}.nextn_predict_layers")) or 0
    trunk = range(max(blocks - nextn, 0))
    values = requirement_values(header, required["fields"])
    flagged = [r["name"] for r in required["tensors"] if not r["always"] and "{bid}" in r["name"]]
    for requirement in required["tensors"]:
        template = requirement["name"]
        if "{xid}" in template:
            continue
        where = [bid for bid in (trunk if "{bid}" in template else [0]) if _conditions_hold(requirement["conditions"], bid, names, values)]
        if not requirement["always"]:
            where = [bid for bid in where if any(other.format(bid=bid) in names for other in flagged if other != template)]
        missing = [name for bid in where if (name := template.format(bid=bid)) not in names]
        if missing:
            shown = ", ".join(repr(name) for name in missing[:MAX_LISTED]) + _more(missing)
            return [
                f"{'tensor' if len(missing) == 1 else 'tensors'} {shown} missing: llama.cpp's {arch} loader requires"
                f" {'it' if len(missing) == 1 else 'them'} and refuses the file (check_tensor_dims: tensor not found)"
            ]
    return []


def requirement_values(header: GGUFHeader, fields: dict[str, str]) -> dict[str, int | tuple[int, ...]]:
    """The hyperparameters requirements compare: hparams accessors, the fields the table names (per-layer ones as tuples)."""
    values: dict[str, int | tuple[int, ...]] = {**hyperparameter_values(header), **tensor_shapes.field_values(header, fields)}
    if header.arch_value(Keys.LLM.EXPERT_COUNT) is None:
        values["n_expert"] = 0  # llama.cpp's default: a model without experts
    return values


def _conditions_hold(conditions: list[list[Any]], bid: int, names: set[str], values: dict[str, int | tuple[int, ...]]) -> bool:
    """Whether every condition of a requirement holds for block `bid`; False where one cannot be decided."""
    for kind, subject, holds in conditions:
        found = subject.format(bid=bid) in names if kind == "tensor" else compared(subject, {**values, "bid": bid})
        if found is None or found != holds:
            return False
    return True


COMPARISONS = {"==": int.__eq__, "!=": int.__ne__, "<": int.__lt__, "<=": int.__le__, ">": int.__gt__, ">=": int.__ge__}


def compared(comparison: str, values: Mapping[str, int | tuple[int, ...]]) -> bool | None:
    """ "left OP right" over hyperparameter values; None where a side cannot be evaluated."""
    left, operator, right = comparison.split(" ")
    low, high = tensor_shapes.evaluate(left, values), tensor_shapes.evaluate(right, values)
    return None if low is None or high is None else COMPARISONS[operator](low, high)


def graph_problems(header: GGUFHeader, table: LoaderTable) -> list[str]:
    """A comparison the architecture's graph asserts, false for this header: llama.cpp aborts when it builds the graph."""
    arch = header.architecture or ""
    values = hyperparameter_values(header)
    for comparison in table.graph_assertions.get(arch, []):
        if compared(comparison, values) is False:
            terms = ", ".join(f"{name}={values[name]}" for name in sorted(set(re.findall(r"[A-Za-z_]\w*", comparison))))
            return [f"llama.cpp aborts building the {arch} graph: GGML_ASSERT({comparison}) fails ({terms})"]
    return []


def key_type_problems(header: GGUFHeader, table: LoaderTable) -> list[str]:
    """A key llama.cpp reads, stored with another type than the one it reads it as (llama-model-loader.cpp: "key ... has
    wrong type", "wrong array element type", "wrong array length")."""
    arch = header.architecture or ""
    generic, own = table.key_types.get("*", {}), table.key_types.get(arch, {})
    for key, stored in header.metadata_types.items():
        templated = "%s" + key[len(arch) :] if arch and key.startswith(f"{arch}.") else key
        read = own.get(key) or generic.get(templated)
        problem = _type_problem(header, key, stored, read) if read is not None else None
        if problem:
            return [problem]
    return []


def _type_problem(header: GGUFHeader, key: str, stored: GGUFValueType, read: dict[str, Any]) -> str | None:
    expected = GGUFValueType[read["type"]]
    if stored != GGUFValueType.ARRAY:
        if read["how"] == "array" or stored == expected:
            return None  # get_arr does not read a value that is not an array
        return f"{key} is {stored.name}; llama.cpp reads it as {expected.name} and refuses the file (key has wrong type)"
    if read["how"] == "scalar":
        return f"{key} is an ARRAY; llama.cpp reads it as one {expected.name} and refuses the file (key has wrong type)"
    array = header.metadata[key]
    assert isinstance(array, ArrayValue)
    accepted = ARRAY_ELEMENTS.get(expected, {expected})
    if array.element_type not in accepted:
        return f"{key} is an array of {array.element_type.name}; llama.cpp reads {expected.name} elements and refuses it"
    blocks = metadata_count(header.arch_value(Keys.LLM.BLOCK_COUNT))
    if read["per_layer"] and blocks is not None and array.count != blocks:
        return f"{key} has {array.count} entries for {blocks} blocks: llama.cpp refuses it (wrong array length)"
    return None


ARRAY_ELEMENTS = {  # llama-model-loader.cpp's get_arr: the stored element types it takes for each it reads
    GGUFValueType.UINT32: {GGUFValueType.UINT32, GGUFValueType.INT32, GGUFValueType.BOOL},
    GGUFValueType.INT32: {GGUFValueType.UINT32, GGUFValueType.INT32, GGUFValueType.BOOL},
}


def pre_tokenizer_problems(header: GGUFHeader, table: LoaderTable) -> list[str]:
    """A BPE vocabulary whose pre-tokenizer llama.cpp does not know by name (llama-vocab.cpp: "unknown pre-tokenizer type")."""
    model, pre = header.metadata.get(Keys.Tokenizer.MODEL), header.metadata.get(Keys.Tokenizer.PRE)
    if isinstance(model, str) and model in table.pre_tokenizers and isinstance(pre, str) and pre not in table.pre_tokenizers[model]:
        return [f"{Keys.Tokenizer.PRE} is {pre!r}: llama.cpp knows no such pre-tokenizer for a {model!r} vocabulary and refuses it"]
    return []


def gating_problems(header: GGUFHeader, table: LoaderTable) -> list[str]:
    """An architecture whose loader accepts one expert gating function only (deepseek4: sqrt-softplus)."""
    arch = header.architecture or ""
    key = f"{arch}.expert_gating_func"
    value = metadata_count(header.metadata.get(key))
    if arch in table.gating and value is not None and value != table.gating[arch]:
        return [f"{key} is {value}; llama.cpp's {arch} loader accepts only {table.gating[arch]} and refuses the file"]
    return []


def rope_problems(header: GGUFHeader, table: LoaderTable) -> list[str]:
    """llama.cpp refuses llama-like models whose rope dimension is not the key length ("invalid n_rot"), where it has heads."""
    arch = header.architecture
    rope = metadata_count(header.arch_value(Keys.Rope.DIMENSION_COUNT))
    values = hyperparameter_values(header)
    head_size = values.get("n_embd_head_k")
    if arch not in table.rope_checked or rope is None or head_size is None or not values.get("n_head"):
        return []
    if rope != head_size:
        return [f"{arch}.rope.dimension_count is {rope} but the key length is {head_size}: llama.cpp refuses it (invalid n_rot)"]
    return []


def expert_problems(header: GGUFHeader, table: LoaderTable) -> list[str]:
    """llama.cpp's assertions on expert counts (llama-model.cpp: n_expert_used_max <= n_expert, > 0 when experts exist)."""
    count_key = Keys.LLM.EXPERT_COUNT.format(arch=header.architecture)
    used_key = Keys.LLM.EXPERT_USED_COUNT.format(arch=header.architecture)
    experts = metadata_count(header.metadata.get(count_key)) or 0
    used_value = header.metadata.get(used_key)
    used_values = used_value.values if isinstance(used_value, ArrayValue) and used_value.values is not None else (used_value,)
    used = max((metadata_count(v) or 0 for v in used_values), default=0)
    if experts > table.max_experts:
        return [
            f"{count_key} is {experts}; llama.cpp allows at most {table.max_experts} (GGML_ASSERT(hparams.n_expert <= LLAMA_MAX_EXPERTS))"
        ]
    if used > experts:
        return [f"{used_key} is {used} but {count_key} is {experts}: llama.cpp aborts (GGML_ASSERT(n_expert_used_max <= hparams.n_expert))"]
    if experts > 0 and used == 0:
        return [f"{used_key} is 0 (or absent) with {experts} experts: llama.cpp aborts (GGML_ASSERT(n_expert_used_max > 0))"]
    return []


def block_problems(header: GGUFHeader, table: LoaderTable) -> list[str]:
    """llama.cpp asserts 0 < block_count <= LLAMA_MAX_LAYERS and looks for the tensors of every block it counts."""
    key = Keys.LLM.BLOCK_COUNT.format(arch=header.architecture)
    blocks = metadata_count(header.metadata.get(key))
    if blocks is None or blocks == 0:
        return []  # `standalone` says the block count is missing
    if blocks > table.max_layers:
        return [f"{key} is {blocks}; llama.cpp allows at most {table.max_layers} (GGML_ASSERT(hparams.n_layer_all <= LLAMA_MAX_LAYERS))"]
    present = blocks_present(header)
    if blocks > present:
        return [f"{key} is {blocks} but the file holds tensors of {present} block(s): llama.cpp does not find blk.{present}.*"]
    beyond = [t.name for t in header.tensors if (index := block_index(t)) is not None and index >= blocks]
    if beyond:
        return [
            f"{key} is {blocks} but the file holds {beyond[0]!r}{_more(beyond, shown=1)}: llama.cpp creates the tensors of blocks"
            f" 0 to {blocks - 1} only and refuses a file with others (done_getting_tensors: wrong number of tensors)"
        ]
    return []


TOKEN_ARRAYS = (  # what llama-vocab.cpp reads beside the token list, the element types it accepts
    (Keys.Tokenizer.SCORES, frozenset({GGUFValueType.FLOAT32, GGUFValueType.INT32})),
    (Keys.Tokenizer.TOKEN_TYPE, frozenset({GGUFValueType.INT32})),
)


def tokenizer_array_problems(header: GGUFHeader) -> list[str]:
    """llama-vocab.cpp throws when the token list is not an array of strings, or scores or token types are of another
    type or shorter than it ("Index out of array bounds for scores")."""
    tokens = header.metadata.get(Keys.Tokenizer.LIST)
    if tokens is None or header.metadata.get(Keys.Tokenizer.MODEL) in ("no_vocab", "none"):
        return []  # `standalone` says the token list is missing; a model without a vocabulary reads none of these
    if not (isinstance(tokens, ArrayValue) and tokens.element_type == GGUFValueType.STRING):
        return [f"{Keys.Tokenizer.LIST} is not an array of strings: llama.cpp refuses it (invalid gguf type)"]
    for key, element_types in TOKEN_ARRAYS:
        array = header.metadata.get(key)
        if array is None:
            continue
        if not (isinstance(array, ArrayValue) and array.element_type in element_types):
            names = " or ".join(sorted(t.name for t in element_types))
            return [f"{key} is not an array of {names}: llama.cpp refuses it (invalid gguf type)"]
        if array.count < tokens.count:
            return [f"{key} has {array.count:,} entries for {tokens.count:,} tokens: llama.cpp refuses it (Index out of array bounds)"]
    return []


def vocabulary_problems(header: GGUFHeader) -> list[str]:
    """llama.cpp aborts on a vocabulary with a token twice (llama-vocab.cpp: id_to_token.size() == token_to_id.size())."""
    tokens = header.metadata.get(Keys.Tokenizer.LIST)
    if not isinstance(tokens, ArrayValue):
        return []
    strings = array_strings(header, tokens)
    if len(set(strings)) == len(strings):  # the common case, at C speed
        return []
    first: dict[bytes, int] = {}
    for index, token in enumerate(strings):
        if token in first:
            return [
                f"{Keys.Tokenizer.LIST} holds {token!r} twice (tokens #{first[token]} and #{index}): llama.cpp aborts"
                " (GGML_ASSERT(id_to_token.size() == token_to_id.size()))"
            ]
        first[token] = index
    return []


VERSIONED_RULES = (  # the first that finds
    architecture_problems,
    required_tensor_problems,
    key_type_problems,
    merges_problems,
    pre_tokenizer_problems,
    gating_problems,
    rope_problems,
    shape_problems,
    graph_problems,
)


def loader_problems(header: GGUFHeader) -> tuple[list[str], list[str]]:
    """(what llama.cpp refuses, what the pinned llama.cpp would refuse but the installed one may not)."""
    table = loader_table()
    certain = block_problems(header, table) + expert_problems(header, table)
    certain += tokenizer_array_problems(header) + vocabulary_problems(header)
    versioned = next((problems for rule in VERSIONED_RULES if (problems := rule(header, table))), [])
    return (certain + versioned, []) if table.follows_installed else (certain, versioned)
