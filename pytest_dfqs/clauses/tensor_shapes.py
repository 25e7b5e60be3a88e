"""The tensor shapes llama.cpp's loader checks (check_tensor_dims), evaluated from the header.

conformance/llama-cpp-loader.json states each shape as llama.cpp's loader writes
it, rewritten over hyperparameters the header states: the names of
LLAMA_LOAD_LOCALS and hparams accessors (n_embd, n_head, n_embd_head_k, ...,
valued here as llama.cpp's load_hparams values them, its defaults for absent keys
included) and fields an architecture reads from one key (q_lora_rank from
deepseek4.attention.q_lora_rank, say); a constant chosen by a value, C's
`a ? b : c`, is written `(b if a else c)`.
A shape whose value cannot be stated (a key absent, a division by zero, a
sliding-window head size that differs per layer) is not checked: the runtime
tier's load decides it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from gguf.constants import Keys

from pytest_dfqs.modelfile.facts import block_index, metadata_count
from pytest_dfqs.modelfile.header import ArrayValue, GGUFHeader

LARGEST_DIMENSION = 2**63 - 1  # ggml's int64_t
OPERATIONS = {ast.Add: int.__add__, ast.Sub: int.__sub__, ast.Mult: int.__mul__}
COMPARED = {ast.Eq: int.__eq__, ast.NotEq: int.__ne__, ast.Lt: int.__lt__, ast.LtE: int.__le__, ast.Gt: int.__gt__, ast.GtE: int.__ge__}
KEYWORDS = frozenset({"if", "else"})  # a dimension chosen by a value, as C's `a ? b : c` (`b if a else c`)


@dataclass(frozen=True)
class ExpectedShape:
    """The shape llama.cpp's loader creates a tensor with; by element count only where it allows a reshape."""

    names: re.Pattern[str]
    dims: tuple[str, ...]
    elements_only: bool


def expected_shapes(tensors: Mapping[str, Mapping[str, Any]]) -> tuple[ExpectedShape, ...]:
    """The table's shapes of one architecture: name template -> {"dims": [...], "elements_only": bool}."""
    return tuple(
        ExpectedShape(names_pattern([name]), tuple(shape["dims"]), bool(shape["elements_only"])) for name, shape in tensors.items()
    )


def names_pattern(templates: list[str]) -> re.Pattern[str]:
    parts = [re.escape(t).replace(r"\{bid\}", r"\d+").replace(r"\{xid\}", r"\d+") for t in templates]
    return re.compile("|".join(parts))


def shape_problems(header: GGUFHeader, shapes: tuple[ExpectedShape, ...], fields: Mapping[str, str]) -> list[str]:
    """The first tensor whose shape is not the one llama.cpp's loader checks, where the header states that shape."""
    stated: dict[str, int | tuple[int, ...]] = {**hyperparameter_values(header), **field_values(header, fields)}
    for tensor in header.tensors:
        for shape in shapes:
            if not shape.names.fullmatch(tensor.name):
                continue
            block = block_index(tensor)
            values = stated if block is None else {**stated, "bid": block}
            expected = tuple(evaluate(dim, values) for dim in shape.dims)
            if None in expected or agrees(tensor.shape, expected, shape.elements_only):  # type: ignore[arg-type]
                continue
            terms = sorted({name for dim in shape.dims for name in re.findall(r"[A-Za-z_]\w*", dim)} - KEYWORDS)
            shown = ", ".join(f"{name}={values[name]}" for name in terms) or "fixed by llama.cpp"
            how = " elements" if shape.elements_only else ""
            return [f"tensor {tensor.name!r} has shape {list(tensor.shape)}; llama.cpp expects {list(expected)}{how} ({shown})"]
    return []


def field_values(header: GGUFHeader, fields: Mapping[str, str]) -> dict[str, int | tuple[int, ...]]:
    """The hparams fields an architecture reads from one key each: the value (a per-layer array's first, as accessors
    read it), and a per-layer array whole under `field[]` (what `field[bid]` indexes)."""
    values: dict[str, int | tuple[int, ...]] = {}
    for field, key in fields.items():
        value = header.metadata.get(key)
        if (scalar := first(value)) is not None:
            values[field] = scalar
        if isinstance(value, ArrayValue) and value.values is not None:
            counts = tuple(metadata_count(item) for item in value.values)
            if None not in counts:
                values[f"{field}[]"] = counts  # type: ignore[assignment]
    return values


def agrees(shape: tuple[int, ...], expected: tuple[int, ...], elements_only: bool) -> bool:
    if elements_only:
        return _product(shape) == _product(expected)
    return padded(shape) == padded(expected)


def _product(dims: tuple[int, ...]) -> int:
    total = 1
    for dim in dims:
        total *= dim
    return total


def padded(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape as ggml holds it: four dimensions, the missing ones 1."""
    return tuple(shape) + (1,) * (4 - len(shape))


def evaluate(expression: str, values: Mapping[str, int | tuple[int, ...]]) -> int | None:
    """An arithmetic dimension over named values, as int64_t arithmetic gives it; None where a value is unknown."""
    value = _value(_parsed(expression), values)
    return value if value is not None and 0 <= value <= LARGEST_DIMENSION else None


@lru_cache(maxsize=4096)
def _parsed(expression: str) -> ast.expr:
    return ast.parse(expression, mode="eval").body


def _value(node: ast.expr, values: Mapping[str, int | tuple[int, ...]]) -> int | None:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.Name):
        value = values.get(node.id)
        return value if isinstance(value, int) else None
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):  # a per-layer value of one block
        array, index = values.get(f"{node.value.id}[]"), _value(node.slice, values)
        return array[index] if isinstance(array, tuple) and index is not None and 0 <= index < len(array) else None
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in COMPARED:
        left, right = _value(node.left, values), _value(node.comparators[0], values)
        return None if left is None or right is None else int(COMPARED[type(node.ops[0])](left, right))
    if isinstance(node, ast.IfExp):
        test = _value(node.test, values)
        return None if test is None else _value(node.body if test else node.orelse, values)
    if not isinstance(node, ast.BinOp):
        return None
    left, right = _value(node.left, values), _value(node.right, values)
    if left is None or right is None:
        return None
    if isinstance(node.op, ast.Div):
        return None if right == 0 else int(left / right) if abs(left) < 2**52 else left // right
    operation = OPERATIONS.get(type(node.op))
    return operation(left, right) if operation else None


def hyperparameter_values(header: GGUFHeader) -> dict[str, int]:
    """The values llama.cpp's load_hparams gives LLAMA_LOAD_LOCALS' names, where the header states them."""
    values: dict[str, int] = {}
    embd = metadata_count(header.arch_value(Keys.LLM.EMBEDDING_LENGTH))
    if embd is not None:
        values["n_embd"] = embd
    tokens, model = header.metadata.get(Keys.Tokenizer.LIST), header.metadata.get(Keys.Tokenizer.MODEL)
    if isinstance(tokens, ArrayValue) and model not in ("no_vocab", "none"):
        values["n_vocab"] = tokens.count
    feed_forward = header.arch_value(Keys.LLM.FEED_FORWARD_LENGTH)
    if feed_forward is None or first(feed_forward) is not None:
        values["n_ff"] = first(feed_forward) or 0  # hparams.n_ff(): the first layer's, 0 when the optional key is absent
    _add_experts(header, values)
    _add_attention(header, values)
    return values


def _add_experts(header: GGUFHeader, values: dict[str, int]) -> None:
    experts = metadata_count(header.arch_value(Keys.LLM.EXPERT_COUNT))
    if experts is None or experts <= 1:  # some architectures turn a single expert into none
        return
    values["n_expert"] = experts
    for name, template in (("n_expert_used", Keys.LLM.EXPERT_USED_COUNT), ("n_ff_exp", Keys.LLM.EXPERT_FEED_FORWARD_LENGTH)):
        declared = header.arch_value(template)
        if (value := first(declared) if declared is not None else 0) is not None:  # llama.cpp's default: 0
            values[name] = value


def _add_attention(header: GGUFHeader, values: dict[str, int]) -> None:
    """Heads, head sizes and n_rot as hparams accessors give them for the first layer (llama-hparams.cpp)."""
    declared_heads = header.arch_value(Keys.Attention.HEAD_COUNT)
    heads = first(declared_heads) if declared_heads is not None else 0  # llama.cpp's default: no heads
    if heads is None:
        return
    values["n_head"] = heads
    kv_heads = first(header.arch_value(Keys.Attention.HEAD_COUNT_KV)) if header.arch_value(Keys.Attention.HEAD_COUNT_KV) else heads
    if kv_heads is not None:
        values["n_head_kv"] = kv_heads
    if heads == 0:  # llama.cpp then ignores the head sizes and rope dimension the header states
        values |= {name: 0 for name in ("n_embd_head_k", "n_embd_head_v", "n_embd_k_gqa", "n_embd_v_gqa", "n_rot")}
        return
    for name, key, swa_key in (
        ("k", Keys.Attention.KEY_LENGTH, Keys.Attention.KEY_LENGTH_SWA),
        ("v", Keys.Attention.VALUE_LENGTH, Keys.Attention.VALUE_LENGTH_SWA),
    ):
        if header.arch_value(swa_key) is not None or "n_embd" not in values:
            continue  # sliding-window layers may have another head size
        declared = header.arch_value(key)
        size = metadata_count(declared) if declared is not None else values["n_embd"] // heads
        if size is not None:
            values[f"n_embd_head_{name}"] = size
            if kv_heads is not None:
                values[f"n_embd_{name}_gqa"] = size * kv_heads
    rope = header.arch_value(Keys.Rope.DIMENSION_COUNT)
    if header.arch_value(Keys.Rope.DIMENSION_COUNT_SWA) is None and (rope is not None or "n_embd_head_k" in values):
        n_rot = metadata_count(rope) if rope is not None else values["n_embd_head_k"]
        if n_rot is not None:
            values["n_rot"] = n_rot


def first(value: object) -> int | None:
    """A per-layer value's first entry (or the value itself), as llama.cpp's hparams accessors read it."""
    if isinstance(value, ArrayValue):
        return metadata_count(value.values[0]) if value.values else None
    return metadata_count(value)
