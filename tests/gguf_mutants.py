"""Seeded header mutants of a well-formed GGUF, for differential tests against llama.cpp.

Each mutant changes only the header (the tensor data after it is kept): random
bytes written over it, boundary integers written over its integer fields
(counts, metadata values, tensor dimensions, types and offsets), random bytes
written into its text (string values and tensor names, length kept), bytes
inserted or deleted, or the file truncated. The same seed gives the same mutants.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gguf.constants import GGUFValueType

from pytest_dfqs.modelfile.header import GGUFHeader, read_header

BOUNDARIES = (0, 1, 2, 3, 7, 255, 256, 65535, 2**31 - 1, 2**31, 2**32 - 1, 2**63 - 1, 2**64 - 1)
INTEGER_FORMATS = {
    GGUFValueType.UINT8: "<B",
    GGUFValueType.INT8: "<B",
    GGUFValueType.UINT16: "<H",
    GGUFValueType.INT16: "<H",
    GGUFValueType.UINT32: "<I",
    GGUFValueType.INT32: "<I",
    GGUFValueType.UINT64: "<Q",
    GGUFValueType.INT64: "<Q",
    GGUFValueType.BOOL: "<B",
}
KINDS = ("flip", "boundary", "text", "insert", "delete", "truncate")


@dataclass(frozen=True)
class Mutant:
    name: str
    data: bytes


def integer_fields(header: GGUFHeader) -> list[tuple[int, str]]:
    """(byte offset, struct format) of every integer the header holds: counts, values, dims, types, offsets."""
    fields = [(8, "<Q"), (16, "<Q")]  # tensor count, key/value count
    for key, offset in header.metadata_offsets.items():
        value_type = header.metadata_types[key]
        value_at = offset + 8 + len(key.encode("utf-8", "surrogateescape")) + 4
        if value_type in INTEGER_FORMATS:
            fields.append((value_at, INTEGER_FORMATS[value_type]))
        elif value_type == GGUFValueType.ARRAY:
            fields.append((value_at + 4, "<Q"))  # the element count
    for tensor in header.tensors:
        at = tensor.info_offset + 8 + len(tensor.name.encode())
        fields.append((at, "<I"))  # n_dims
        fields += [(at + 4 + 8 * axis, "<Q") for axis in range(len(tensor.shape))]
        after_dims = at + 4 + 8 * len(tensor.shape)
        fields += [(after_dims, "<I"), (after_dims + 4, "<Q")]  # ggml type, data offset
    return fields


def text_fields(header: GGUFHeader) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(byte offset, length) of the string values, and of the tensor names: text llama.cpp reads as bytes."""
    values = []
    for key, offset in header.metadata_offsets.items():
        if header.metadata_types[key] == GGUFValueType.STRING:
            value_at = offset + 8 + len(key.encode("utf-8", "surrogateescape")) + 4
            values.append((value_at + 8, len(str(header.metadata[key]).encode())))
    names = [(tensor.info_offset + 8, len(tensor.name.encode())) for tensor in header.tensors]
    return [field for field in values if field[1]], names


def mutants(base: Path, seed: int, count: int) -> Iterator[Mutant]:
    """`count` mutants of `base`, each named by its seed, kind and index."""
    original = base.read_bytes()
    header = read_header(base)
    end = header.data_offset
    fields = integer_fields(header)
    texts = text_fields(header)
    rng = random.Random(seed)
    for index in range(count):
        kind = KINDS[index % len(KINDS)]
        data = bytearray(original)
        if kind == "flip":
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(end)] = rng.randrange(256)
        elif kind == "boundary":
            offset, fmt = rng.choice(fields)
            limit = 1 << (8 * struct.calcsize(fmt))
            value = rng.choice(BOUNDARIES) % limit
            value = value if rng.random() < 0.7 else (struct.unpack_from(fmt, data, offset)[0] + rng.choice((-1, 1))) % limit
            struct.pack_into(fmt, data, offset, value)
        elif kind == "text":
            offset, length = rng.choice(texts[0] if rng.random() < 0.5 else texts[1])
            for _ in range(rng.randint(1, 2)):
                data[offset + rng.randrange(length)] = rng.choice((rng.randrange(128, 256), rng.randrange(32, 127)))
        elif kind == "insert":
            at = rng.randrange(end)
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif kind == "delete":
            at = rng.randrange(end)
            del data[at : at + rng.randint(1, 8)]
        else:
            del data[rng.randrange(len(data)) :]
        yield Mutant(f"{base.stem}-{seed}-{kind}-{index:05d}.gguf", bytes(data))
