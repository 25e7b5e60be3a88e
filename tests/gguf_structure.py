"""Structure-aware mutants of a well-formed GGUF: each a valid GGUF that means something else.

The base is parsed once into its parts (key/value entries as their bytes, tensors
with their data); a mutant is those parts with one named change, written by one
serializer, so that only the change differs from the base. Byte-level mutants
(tests/gguf_mutants.py) mostly break the header's syntax; these keep every offset
right and change what the file says: a tensor dropped, renamed, transposed or
added; a key dropped or retyped; a hyperparameter or a tokenizer field changed;
and rewrites llama.cpp still runs (keys reordered, a key added, another
alignment, a norm stored as F16, tensors in another order). The same seed gives
the same mutants.
"""

from __future__ import annotations

import mmap
import random
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from gguf.constants import GGML_QUANT_SIZES, GGUF_MAGIC, GGMLQuantizationType, GGUFValueType

from pytest_dfqs.modelfile.header import align_up, metadata_spans, read_header
from tests.gguf_bytes import SCALAR_FORMATS, encode_value, gguf_string

DEFAULT_ALIGNMENT = 32
INTEGER_TYPES = (GGUFValueType.UINT32, GGUFValueType.INT32, GGUFValueType.UINT64, GGUFValueType.UINT16, GGUFValueType.INT64)
TOKENIZER_ARRAYS = ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type", "tokenizer.ggml.merges")
TOKENIZER_NAMES = ("llama", "gpt2", "bert", "t5", "rwkv", "smollm", "deepseek-v3", "default", "nonesuch")  # models and pre-tokenizers
TOKEN_ID_KEYS = ("tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id")


@dataclass(frozen=True)
class Entry:
    """One key/value entry: its key, type, and the value's bytes as they follow the type in the file."""

    key: str
    value_type: GGUFValueType
    payload: bytes

    def encoded(self) -> bytes:
        return gguf_string(self.key) + struct.pack("<I", self.value_type) + self.payload

    def scalar(self) -> int | float | None:
        fmt = SCALAR_FORMATS.get(self.value_type)
        return struct.unpack(fmt, self.payload)[0] if fmt else None


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]  # ggml order: ne0 first
    ggml_type: int
    data: bytes | memoryview


@dataclass(frozen=True)
class GGUFParts:
    version: int
    entries: tuple[Entry, ...]
    tensors: tuple[Tensor, ...]

    @property
    def alignment(self) -> int:
        entry = self.entry("general.alignment")
        value = entry.scalar() if entry is not None else None
        return value if isinstance(value, int) and value > 0 else DEFAULT_ALIGNMENT

    def entry(self, key: str) -> Entry | None:
        return next((entry for entry in self.entries if entry.key == key), None)

    @property
    def architecture(self) -> str:
        entry = self.entry("general.architecture")
        assert entry is not None
        return entry.payload[8:].decode()


def parse(path: Path) -> GGUFParts:
    """The parts of a well-formed GGUF; tensor data stays in a read-only map of the file."""
    header = read_header(path)
    with path.open("rb") as handle:
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    view = memoryview(mapped)
    entries = []
    for key, (start, end) in metadata_spans(header).items():
        value_at = start + 8 + len(key.encode("utf-8", "surrogateescape"))
        entries.append(Entry(key, header.metadata_types[key], bytes(view[value_at + 4 : end])))
    tensors = tuple(
        Tensor(t.name, t.shape, t.ggml_type, view[header.data_offset + t.offset : header.data_offset + t.offset + t.nbytes])
        for t in header.tensors
    )
    return GGUFParts(header.version, tuple(entries), tensors)


def serialize(parts: GGUFParts, path: Path) -> None:
    """The parts as a GGUF file: header, tensor infos, padding, data packed in order at the alignment the parts state."""
    alignment = parts.alignment
    infos, offset = [], 0
    for tensor in parts.tensors:
        dims = struct.pack(f"<I{len(tensor.shape)}Q", len(tensor.shape), *tensor.shape)
        infos.append(gguf_string(tensor.name) + dims + struct.pack("<IQ", tensor.ggml_type, offset))
        offset = align_up(offset + len(tensor.data), alignment)
    head = struct.pack("<IIQQ", GGUF_MAGIC, parts.version, len(parts.tensors), len(parts.entries))
    header = head + b"".join(entry.encoded() for entry in parts.entries) + b"".join(infos)
    with path.open("wb") as out:
        out.write(header + bytes(align_up(len(header), alignment) - len(header)))
        for tensor in parts.tensors:
            out.write(tensor.data)
            out.write(bytes(align_up(len(tensor.data), alignment) - len(tensor.data)))


@dataclass(frozen=True)
class StructureMutant:
    kind: str
    change: str  # what was changed, in words
    parts: GGUFParts


Mutation = Callable[[GGUFParts, random.Random], tuple[str, GGUFParts] | None]


def _with_tensors(parts: GGUFParts, tensors: list[Tensor]) -> GGUFParts:
    return replace(parts, tensors=tuple(tensors))


def _with_entries(parts: GGUFParts, entries: list[Entry]) -> GGUFParts:
    return replace(parts, entries=tuple(entries))


def drop_tensor(parts: GGUFParts, rng: random.Random) -> tuple[str, GGUFParts]:
    index = rng.randrange(len(parts.tensors))
    return f"dropped {parts.tensors[index].name}", _with_tensors(parts, [t for i, t in enumerate(parts.tensors) if i != index])


def rename_tensor(parts: GGUFParts, rng: random.Random) -> tuple[str, GGUFParts]:
    """A typo in a tensor's name, or a block index past block_count."""
    tensors = list(parts.tensors)
    index = rng.randrange(len(tensors))
    name = tensors[index].name
    if name.startswith("blk.") and rng.random() < 0.5:
        blocks = _arch_scalar(parts, "block_count") or 1
        _, _, rest = name.split(".", 2)
        new = f"blk.{int(blocks) + rng.randrange(3)}.{rest}"
    else:
        letters = [i for i, c in enumerate(name) if c.isalpha()]
        at = rng.choice(letters)
        new = name[:at] + rng.choice([c for c in "xqzj" if c != name[at]]) + name[at + 1 :]
    tensors[index] = replace(tensors[index], name=new)
    return f"renamed {name} to {new}", _with_tensors(parts, tensors)


def transpose_tensor(parts: GGUFParts, rng: random.Random) -> tuple[str, GGUFParts] | None:
    candidates = [i for i, t in enumerate(parts.tensors) if len(t.shape) == 2 and t.shape[0] != t.shape[1] and _transposable(t)]
    if not candidates:
        return None
    index = rng.choice(candidates)
    tensor = parts.tensors[index]
    tensors = list(parts.tensors)
    tensors[index] = replace(tensor, shape=(tensor.shape[1], tensor.shape[0]))
    return f"transposed {tensor.name} {list(tensor.shape)}", _with_tensors(parts, tensors)


def _transposable(tensor: Tensor) -> bool:
    """Its rows stay whole quantization blocks when the dimensions swap."""
    block, _ = GGML_QUANT_SIZES[GGMLQuantizationType(tensor.ggml_type)]
    return tensor.shape[1] % block == 0


def add_tensor(parts: GGUFParts, rng: random.Random) -> tuple[str, GGUFParts]:
    """A copy of an existing tensor under another name: the next block's, an unknown suffix, or a known optional one."""
    source = rng.choice(parts.tensors)
    blocks = int(_arch_scalar(parts, "block_count") or 1)
    if source.name.startswith("blk.") and rng.random() < 0.4:
        _, _, rest = source.name.split(".", 2)
        name = f"blk.{blocks}.{rest}"
    elif rng.random() < 0.5:
        name = source.name.replace(".weight", ".extra.weight") if source.name.endswith(".weight") else source.name + ".extra"
    else:
        name = rng.choice(["rope_freqs.weight", "output_norm.bias", "blk.0.attn_q.bias", "token_types.weight", "blk.0.attn_sinks.weight"])
    if any(t.name == name for t in parts.tensors):
        name = f"{name}.copy"
    tensors = list(parts.tensors)
    tensors.insert(rng.randrange(len(tensors) + 1), replace(source, name=name))
    return f"added {name} (a copy of {source.name})", _with_tensors(parts, tensors)


def drop_key(parts: GGUFParts, rng: random.Random) -> tuple[str, GGUFParts]:
    index = rng.randrange(len(parts.entries))
    return f"dropped key {parts.entries[index].key}", _with_entries(parts, [e for i, e in enumerate(parts.entries) if i != index])


def retype_key(parts: GGUFParts, rng: random.Random) -> tuple[str, GGUFParts] | None:
    """An integer key stored as a string, a float or another integer type; a float key as an integer; a string as an integer."""
    candidates = [i for i, e in enumerate(parts.entries) if e.value_type != GGUFValueType.ARRAY]
    index = rng.choice(candidates)
    entry = parts.entries[index]
    value = entry.scalar()
    if entry.value_type == GGUFValueType.STRING:
        new_type, payload = GGUFValueType.UINT32, struct.pack("<I", 1)
    elif isinstance(value, float):
        new_type, payload = GGUFValueType.UINT32, struct.pack("<I", max(int(value), 0))
    elif isinstance(value, bool) or entry.value_type == GGUFValueType.BOOL:
        new_type, payload = GGUFValueType.UINT32, struct.pack("<I", int(bool(value)))
    else:
        new_type = rng.choice([GGUFValueType.STRING, GGUFValueType.FLOAT32, *[t for t in INTEGER_TYPES if t != entry.value_type]])
        written = {GGUFValueType.STRING: str(value), GGUFValueType.FLOAT32: float(value or 0)}.get(new_type, value)
        payload = encode_value(new_type, written)
    entries = list(parts.entries)
    entries[index] = Entry(entry.key, new_type, payload)
    return f"retyped {entry.key} from {entry.value_type.name} to {new_type.name}", _with_entries(parts, entries)


def change_hyperparameter(parts: GGUFParts, rng: random.Random) -> tuple[str, GGUFParts] | None:
    """An integer hyperparameter of the architecture (or an element of a per-layer one) set to a near or odd value."""
    arch = parts.architecture
    candidates = [
        i for i, e in enumerate(parts.entries) if e.key.startswith(f"{arch}.") and (e.value_type in INTEGER_TYPES or _integer_array(e))
    ]
    if not candidates:
        return None
    index = rng.choice(candidates)
    entry = parts.entries[index]
    entries = list(parts.entries)
    if entry.value_type == GGUFValueType.ARRAY:
        element_type, values = _array_values(entry)
        at = rng.randrange(len(values))
        old = values[at]
        values[at] = _nearby(old, rng, element_type)
        entries[index] = Entry(entry.key, entry.value_type, encode_value(GGUFValueType.ARRAY, (element_type, values)))
        return f"changed {entry.key}[{at}] from {old} to {values[at]}", _with_entries(parts, entries)
    old = entry.scalar()
    assert isinstance(old, int)
    new = _nearby(old, rng, entry.value_type)
    entries[index] = Entry(entry.key, entry.value_type, struct.pack(SCALAR_FORMATS[entry.value_type], new))
    return f"changed {entry.key} from {old} to {new}", _with_entries(parts, entries)


def _nearby(value: int, rng: random.Random, value_type: GGUFValueType) -> int:
    options = {value + 1, max(value - 1, 0), value * 2, value // 2, 0, 1, 3} - {value}
    new = rng.choice(sorted(options))
    return new if value_type not in (GGUFValueType.UINT16,) else min(new, 65535)


def _integer_array(entry: Entry) -> bool:
    if entry.value_type != GGUFValueType.ARRAY:
        return False
    element_type, count = struct.unpack_from("<IQ", entry.payload)
    return GGUFValueType(element_type) in INTEGER_TYPES and 0 < count <= 1024


def _array_values(entry: Entry) -> tuple[GGUFValueType, list]:
    element_type, count = struct.unpack_from("<IQ", entry.payload)
    fmt = SCALAR_FORMATS[GGUFValueType(element_type)]
    return GGUFValueType(element_type), list(struct.unpack_from(f"<{count}{fmt[1]}", entry.payload, 12))


def shorten_tokenizer_array(parts: GGUFParts, rng: random.Random) -> tuple[str, GGUFParts] | None:
    """A tokenizer array (tokens, scores, token types, merges) one entry short."""
    present = [i for i, e in enumerate(parts.entries) if e.key in TOKENIZER_ARRAYS]
    if not present:
        return None
    index = rng.choice(present)
    entry = parts.entries[index]
    element_type, count = struct.unpack_from("<IQ", entry.payload)
    body = _elements_without_last(GGUFValueType(element_type), count, entry.payload[12:])
    entries = list(parts.entries)
    entries[index] = Entry(entry.key, entry.value_type, struct.pack("<IQ", element_type, count - 1) + body)
    return f"{entry.key} one entry short ({count - 1} of {count})", _with_entries(parts, entries)


def _elements_without_last(element_type: GGUFValueType, count: int, body: bytes) -> bytes:
    if element_type != GGUFValueType.STRING:
        return body[: len(body) - struct.calcsize(SCALAR_FORMATS[element_type])]
    position = 0
    for _ in range(count - 1):
        (length,) = struct.unpack_from("<Q", body, position)
        position += 8 + length
    return body[:position]


def change_tokenizer_field(parts: GGUFParts, rng: random.Random) -> tuple[str, GGUFParts] | None:
    """The tokenizer model or pre-tokenizer named otherwise, or a special token id past the vocabulary."""
    entries = list(parts.entries)
    choices = [key for key in ("tokenizer.ggml.model", "tokenizer.ggml.pre", *TOKEN_ID_KEYS) if parts.entry(key) is not None]
    key = rng.choice(choices)
    index = next(i for i, e in enumerate(entries) if e.key == key)
    entry = entries[index]
    if entry.value_type == GGUFValueType.STRING:
        old = entry.payload[8:].decode()
        new = rng.choice([name for name in TOKENIZER_NAMES if name != old])
        entries[index] = Entry(key, entry.value_type, gguf_string(new))
        return f"{key} {old!r} -> {new!r}", _with_entries(parts, entries)
    tokens = parts.entry("tokenizer.ggml.tokens")
    n_vocab = struct.unpack_from("<Q", tokens.payload, 4)[0] if tokens else 1000
    new_id = n_vocab + rng.randrange(1, 100)
    entries[index] = Entry(key, GGUFValueType.UINT32, struct.pack("<I", new_id))
    return f"{key} -> {new_id} (vocabulary of {n_vocab})", _with_entries(parts, entries)


def reorder_keys(parts: GGUFParts, rng: random.Random) -> tuple[str, GGUFParts]:
    entries = list(parts.entries)
    rng.shuffle(entries)
    return "keys in another order", _with_entries(parts, entries)


def add_key(parts: GGUFParts, rng: random.Random) -> tuple[str, GGUFParts]:
    key, value_type, value = rng.choice(
        [
            ("general.description", GGUFValueType.STRING, "a mutant of the base, for llama.cpp to judge"),
            ("dfqs.mutant.seed", GGUFValueType.UINT32, rng.randrange(1 << 31)),
            (f"{parts.architecture}.dfqs_unused", GGUFValueType.FLOAT32, 0.5),
        ]
    )
    entries = list(parts.entries)
    entries.insert(rng.randrange(len(entries) + 1), Entry(key, value_type, encode_value(value_type, value)))
    return f"added key {key}", _with_entries(parts, entries)


def realign(parts: GGUFParts, rng: random.Random) -> tuple[str, GGUFParts]:
    alignment = rng.choice([64, 128, 256])
    entries = [e for e in parts.entries if e.key != "general.alignment"]
    entries.insert(1, Entry("general.alignment", GGUFValueType.UINT32, struct.pack("<I", alignment)))
    return f"general.alignment {alignment}", _with_entries(parts, entries)


def norm_as_f16(parts: GGUFParts, rng: random.Random) -> tuple[str, GGUFParts] | None:
    norms = [i for i, t in enumerate(parts.tensors) if "norm" in t.name and t.ggml_type == GGMLQuantizationType.F32]
    if not norms:
        return None
    index = rng.choice(norms)
    tensor = parts.tensors[index]
    half = np.frombuffer(tensor.data, dtype=np.float32).astype(np.float16).tobytes()
    tensors = list(parts.tensors)
    tensors[index] = replace(tensor, ggml_type=int(GGMLQuantizationType.F16), data=half)
    return f"{tensor.name} stored as F16", _with_tensors(parts, tensors)


def reorder_tensors(parts: GGUFParts, rng: random.Random) -> tuple[str, GGUFParts]:
    tensors = list(parts.tensors)
    rng.shuffle(tensors)
    return "tensors in another order", _with_tensors(parts, tensors)


def _arch_scalar(parts: GGUFParts, name: str) -> int | float | None:
    entry = parts.entry(f"{parts.architecture}.{name}")
    return entry.scalar() if entry is not None else None


MUTATIONS: dict[str, Mutation] = {
    "tensor dropped": drop_tensor,
    "tensor renamed": rename_tensor,
    "tensor transposed": transpose_tensor,
    "tensor added": add_tensor,
    "key dropped": drop_key,
    "key retyped": retype_key,
    "hyperparameter changed": change_hyperparameter,
    "tokenizer array short": shorten_tokenizer_array,
    "tokenizer field changed": change_tokenizer_field,
    "keys reordered": reorder_keys,
    "key added": add_key,
    "alignment changed": realign,
    "norm as F16": norm_as_f16,
    "tensors reordered": reorder_tensors,
}
WEIGHTS = {
    "tensor dropped": 3,
    "tensor renamed": 2,
    "tensor transposed": 2,
    "tensor added": 2,
    "key dropped": 4,
    "key retyped": 3,
    "hyperparameter changed": 4,
    "tokenizer array short": 1,
    "tokenizer field changed": 1,
    "keys reordered": 1,
    "key added": 1,
    "alignment changed": 1,
    "norm as F16": 1,
    "tensors reordered": 1,
}


def structure_mutants(base: Path, seed: int, count: int) -> Iterator[StructureMutant]:
    """`count` mutants of `base`, the kinds drawn by WEIGHTS; the same seed gives the same mutants."""
    parts = parse(base)
    rng = random.Random(seed)
    kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
    made = 0
    while made < count:
        kind = rng.choices(kinds, weights)[0]
        mutated = MUTATIONS[kind](parts, rng)
        if mutated is None:
            continue
        change, mutant = mutated
        made += 1
        yield StructureMutant(kind, change, mutant)
