"""Bounded, hostile-input-safe reading of a GGUF header.

The reader walks the key/value section and the tensor infos of a GGUF file
through a read-only memory map and never touches tensor data. Every count the
file declares is checked against the bytes that are actually left before it
drives a loop or an allocation, so a 49-byte file that declares 2**62 array
elements fails at once instead of hanging. The first inconsistency raises
`HeaderError`, which names the byte offset and the field.

The rules follow llama.cpp's own loader (ggml/src/gguf.cpp); format constants,
value types and ggml type sizes come from the `gguf` package.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from gguf.constants import (
    GGML_QUANT_SIZES,
    GGUF_DEFAULT_ALIGNMENT,
    GGUF_MAGIC,
    GGUF_VERSION,
    GGMLQuantizationType,
    GGUFValueType,
    Keys,
)

SUPPORTED_VERSIONS = range(2, GGUF_VERSION + 1)
MAX_STRING_LENGTH = 1 << 30  # GGUF_MAX_STRING_LENGTH in gguf.cpp
MAX_ARRAY_ELEMENTS = 1 << 30  # GGUF_MAX_ARRAY_ELEMENTS in gguf.cpp
MAX_TENSOR_NAME = 64  # GGML_MAX_NAME: names must be shorter than this
MAX_DIMS = 4  # GGML_MAX_DIMS
INT64_MAX = (1 << 63) - 1
SMALL_ARRAY = 1024  # arrays up to this many elements (per-layer values) are decoded eagerly
MIN_KV_BYTES = 8 + 1 + 4 + 1  # key length, one key byte, type, one value byte
MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8  # name length, n_dims, type, offset

_SCALARS: dict[GGUFValueType, struct.Struct] = {
    GGUFValueType.UINT8: struct.Struct("<B"),
    GGUFValueType.INT8: struct.Struct("<b"),
    GGUFValueType.UINT16: struct.Struct("<H"),
    GGUFValueType.INT16: struct.Struct("<h"),
    GGUFValueType.UINT32: struct.Struct("<I"),
    GGUFValueType.INT32: struct.Struct("<i"),
    GGUFValueType.FLOAT32: struct.Struct("<f"),
    GGUFValueType.BOOL: struct.Struct("<b"),
    GGUFValueType.UINT64: struct.Struct("<Q"),
    GGUFValueType.INT64: struct.Struct("<q"),
    GGUFValueType.FLOAT64: struct.Struct("<d"),
}
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")


class HeaderError(Exception):
    """The header is not a valid GGUF header; says where and what."""

    def __init__(self, offset: int, field_name: str, problem: str) -> None:
        super().__init__(f"{field_name} at byte {offset}: {problem}")
        self.offset = offset
        self.field = field_name
        self.problem = problem


@dataclass(frozen=True)
class SpecDeviation:
    """Something the GGUF specification forbids but llama.cpp reads anyway: reported, not fatal."""

    offset: int
    field: str
    problem: str

    def describe(self) -> str:
        return f"{self.field} at byte {self.offset}: {self.problem}"


@dataclass(frozen=True)
class ArrayValue:
    """A metadata array; large arrays keep only their place in the file."""

    element_type: GGUFValueType
    count: int
    offset: int
    values: tuple | None = None

    def __len__(self) -> int:
        return self.count


MetadataValue = int | float | bool | str | ArrayValue


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as the header declares it; `offset` is relative to the data section."""

    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int
    info_offset: int

    @property
    def type_name(self) -> str:
        return GGMLQuantizationType(self.ggml_type).name

    @property
    def n_elements(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count

    @property
    def nbytes(self) -> int:
        block_size, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(self.ggml_type)]
        return self.n_elements // block_size * type_size


@dataclass(frozen=True)
class GGUFHeader:
    """Everything before the tensor data, plus where the data section starts."""

    path: Path
    file_size: int
    version: int
    metadata: dict[str, MetadataValue]
    tensors: tuple[TensorInfo, ...]
    alignment: int
    data_offset: int
    metadata_types: dict[str, GGUFValueType] = field(default_factory=dict)
    metadata_offsets: dict[str, int] = field(default_factory=dict)
    deviations: tuple[SpecDeviation, ...] = ()  # what the spec forbids and llama.cpp tolerates
    metadata_end: int = 0  # where the key/value section ends and the tensor infos begin: a key's bytes end at the next key or here

    @property
    def architecture(self) -> str | None:
        value = self.metadata.get(Keys.General.ARCHITECTURE)
        return value if isinstance(value, str) else None

    def arch_value(self, template: str) -> MetadataValue | None:
        """A value by gguf's key template such as "{arch}.expert_count"."""
        arch = self.architecture
        return None if arch is None else self.metadata.get(template.format(arch=arch))


class _Cursor:
    """A position in the mapped header that refuses to step past the end."""

    def __init__(self, buffer: mmap.mmap | bytes, size: int, deviations: list[SpecDeviation] | None = None) -> None:
        self.buffer = buffer
        self.size = size
        self.pos = 0
        self.deviations = deviations if deviations is not None else []

    def need(self, nbytes: int, field_name: str) -> int:
        start = self.pos
        if nbytes > self.size - start:
            raise HeaderError(
                start,
                field_name,
                f"needs {nbytes} bytes but the file ends at byte {self.size} (truncated or corrupt file)",
            )
        self.pos = start + nbytes
        return start

    def unpack(self, fmt: struct.Struct, field_name: str) -> int | float:
        value: int | float = fmt.unpack_from(self.buffer, self.need(fmt.size, field_name))[0]
        return value

    def integer(self, fmt: struct.Struct, field_name: str) -> int:
        """A count, type id, offset or dimension: `fmt` is one of the integer formats."""
        value: int = fmt.unpack_from(self.buffer, self.need(fmt.size, field_name))[0]
        return value

    def string(self, field_name: str) -> str:
        length_at = self.pos
        length = self.integer(_U64, f"{field_name} length")
        if length > MAX_STRING_LENGTH:
            raise HeaderError(length_at, field_name, f"string length {length} exceeds the GGUF maximum of {MAX_STRING_LENGTH}")
        if length > self.remaining():
            raise HeaderError(
                length_at,
                field_name,
                f"declares a string of {length} bytes but the file ends at byte {self.size} (truncated or corrupt file)",
            )
        start = self.need(length, field_name)
        raw = bytes(self.buffer[start : start + length])
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as error:  # the spec asks for UTF-8; llama.cpp takes the bytes as they are
            problem = f"is not valid UTF-8 ({error.reason} at position {error.start}); shown with \\x escapes"
            self.deviations.append(SpecDeviation(start, field_name, problem))
            return raw.decode("utf-8", "backslashreplace")

    def remaining(self) -> int:
        return self.size - self.pos


def read_header(path: Path) -> GGUFHeader:
    """Read and validate the header of the GGUF file at `path`, read-only."""
    try:
        with open(path, "rb") as handle:
            size = _file_size(handle)
            if size == 0:
                raise HeaderError(0, "magic", "the file is empty")
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                return _parse(path, mapped, size)
    except (OSError, ValueError) as error:  # a device or special file that cannot be mapped
        raise HeaderError(0, "file", f"cannot be read as a GGUF file: {getattr(error, 'strerror', None) or error}") from None


def metadata_spans(header: GGUFHeader) -> dict[str, tuple[int, int]]:
    """Each key/value entry's bytes [start, end) in the file, in file order: what copies an entry byte for byte."""
    starts = list(header.metadata_offsets.items())
    ends = [start for _, start in starts[1:]] + [header.metadata_end]
    return {key: (start, end) for (key, start), end in zip(starts, ends)}


def _file_size(handle: BinaryIO) -> int:
    handle.seek(0, 2)
    return handle.tell()


def _parse(path: Path, buffer: mmap.mmap | bytes, size: int) -> GGUFHeader:
    cursor = _Cursor(buffer, size)
    version = _read_preamble(cursor)
    n_tensors = _read_count(cursor, "tensor count", MIN_TENSOR_INFO_BYTES, extra=_I64.size)
    n_kv = _read_count(cursor, "metadata key/value count", MIN_KV_BYTES)
    metadata, types, offsets = _read_metadata(cursor, n_kv)
    metadata_end = cursor.pos
    alignment = _alignment(metadata, types, offsets)
    tensors = _read_tensor_infos(cursor, n_tensors)
    data_offset = align_up(cursor.pos, alignment) if tensors else cursor.pos
    if version < GGUF_VERSION:
        cursor.deviations.insert(0, SpecDeviation(4, "version", f"GGUF v{version}; the current version is {GGUF_VERSION}"))
    deviations = tuple(cursor.deviations)
    return GGUFHeader(path, size, version, metadata, tensors, alignment, data_offset, types, offsets, deviations, metadata_end)


def _read_preamble(cursor: _Cursor) -> int:
    start = cursor.need(4, "magic")
    magic = _U32.unpack_from(cursor.buffer, start)[0]
    if magic != GGUF_MAGIC:
        found = bytes(cursor.buffer[start : start + 4])
        raise HeaderError(0, "magic", f"expected b'GGUF', found {found!r}: not a GGUF file")
    version = cursor.integer(_U32, "version")
    if version == 0 or version & 0xFFFF == 0:
        raise HeaderError(4, "version", f"version {version} is invalid (a big-endian GGUF or a corrupt header)")
    if version not in SUPPORTED_VERSIONS:
        raise HeaderError(4, "version", f"GGUF version {version} is not supported (llama.cpp reads versions 2 and 3)")
    return version


def _read_count(cursor: _Cursor, field_name: str, min_entry: int, extra: int = 0) -> int:
    """A declared count, refused when its entries cannot fit in what is left."""
    at = cursor.pos
    count = cursor.integer(_I64, field_name)
    room = cursor.remaining() - extra
    if count < 0 or count > room // min_entry:
        raise HeaderError(
            at,
            field_name,
            f"declares {count} entries, but the {max(room, 0)} bytes that follow can hold at most"
            f" {max(room, 0) // min_entry} (truncated or corrupt file)",
        )
    return count


def _read_metadata(cursor: _Cursor, n_kv: int) -> tuple[dict[str, MetadataValue], dict[str, GGUFValueType], dict[str, int]]:
    metadata: dict[str, MetadataValue] = {}
    types: dict[str, GGUFValueType] = {}
    offsets: dict[str, int] = {}
    for index in range(n_kv):
        key_at = cursor.pos
        key = cursor.string(f"metadata key #{index}")
        if not key:
            raise HeaderError(key_at, f"metadata key #{index}", "the key is empty")
        if key in metadata:
            raise HeaderError(key_at, f"metadata key #{index}", f"duplicate key {key!r}")
        value_type = _value_type(cursor, f"type of {key!r}")
        if value_type == GGUFValueType.ARRAY:
            metadata[key] = _read_array(cursor, key)
        else:
            metadata[key] = _read_scalar(cursor, value_type, key)
        types[key] = value_type
        offsets[key] = key_at
    return metadata, types, offsets


def _value_type(cursor: _Cursor, field_name: str) -> GGUFValueType:
    at = cursor.pos
    raw = cursor.integer(_U32, field_name)
    try:
        return GGUFValueType(raw)
    except ValueError:
        raise HeaderError(at, field_name, f"unknown GGUF value type {raw}") from None


def _read_scalar(cursor: _Cursor, value_type: GGUFValueType, key: str) -> MetadataValue:
    if value_type == GGUFValueType.STRING:
        return cursor.string(f"value of {key!r}")
    value = cursor.unpack(_SCALARS[value_type], f"value of {key!r}")
    return bool(value) if value_type == GGUFValueType.BOOL else value


def _read_array(cursor: _Cursor, key: str) -> ArrayValue:
    element_type = _value_type(cursor, f"element type of {key!r}")
    if element_type == GGUFValueType.ARRAY:
        raise HeaderError(cursor.pos - 4, f"element type of {key!r}", "nested arrays are not allowed in GGUF")
    count_at = cursor.pos
    count = cursor.integer(_U64, f"length of {key!r}")
    element_size = 8 if element_type == GGUFValueType.STRING else _SCALARS[element_type].size
    if count > MAX_ARRAY_ELEMENTS or count * element_size > cursor.remaining():
        raise HeaderError(
            count_at,
            f"length of {key!r}",
            f"declares {count} {element_type.name} elements, but only {cursor.remaining()} bytes follow",
        )
    start = cursor.pos
    if element_type == GGUFValueType.STRING:
        _skip_strings(cursor, count, key)
    else:
        cursor.need(count * element_size, f"elements of {key!r}")
    values = _decode_small_array(cursor, key, element_type, count, start) if count <= SMALL_ARRAY else None
    return ArrayValue(element_type, count, start, values)


def _skip_strings(cursor: _Cursor, count: int, key: str) -> None:
    """Walk `count` length-prefixed strings: the hot loop of a large vocabulary.

    The fast walk does no per-string checks; struct refuses to read past the
    buffer, and one check at the end catches an overshoot or an oversized
    string. Only then does the checked walk run, to name the bad element.
    """
    unpack_length: Callable = _U64.unpack_from
    buffer, start = cursor.buffer, cursor.pos
    pos = start
    try:
        for _ in range(count):
            pos += 8 + unpack_length(buffer, pos)[0]
    except (struct.error, OverflowError):
        pos = cursor.size + 1
    if pos > cursor.size or pos - start - 8 * count > MAX_STRING_LENGTH:
        pos = _skip_strings_checked(cursor, count, key)
    cursor.pos = pos


def _skip_strings_checked(cursor: _Cursor, count: int, key: str) -> int:
    unpack_length: Callable = _U64.unpack_from
    buffer, size, pos = cursor.buffer, cursor.size, cursor.pos
    for index in range(count):
        if pos + 8 > size:
            raise HeaderError(pos, f"{key}[{index}] length", f"the file ends at byte {size} inside the array (truncated)")
        length = unpack_length(buffer, pos)[0]
        if length > MAX_STRING_LENGTH:
            raise HeaderError(pos, f"{key}[{index}]", f"string length {length} exceeds the GGUF maximum of {MAX_STRING_LENGTH}")
        if pos + 8 + length > size:
            raise HeaderError(pos, f"{key}[{index}]", f"string of {length} bytes runs past the end of the file at byte {size}")
        pos += 8 + length
    return pos


def _decode_small_array(cursor: _Cursor, key: str, element_type: GGUFValueType, count: int, start: int) -> tuple:
    if element_type == GGUFValueType.STRING:
        reader = _Cursor(cursor.buffer, cursor.size, cursor.deviations)
        reader.pos = start
        return tuple(reader.string(f"{key}[{index}]") for index in range(count))
    fmt = _SCALARS[element_type]
    values = struct.unpack_from(f"<{count}{fmt.format[-1]}", cursor.buffer, start)
    return tuple(bool(v) for v in values) if element_type == GGUFValueType.BOOL else values


def _alignment(metadata: dict[str, MetadataValue], types: dict[str, GGUFValueType], offsets: dict[str, int]) -> int:
    key = Keys.General.ALIGNMENT
    if key not in metadata:
        return GGUF_DEFAULT_ALIGNMENT
    if types[key] != GGUFValueType.UINT32:
        raise HeaderError(offsets[key], key, f"must be of type UINT32 but is {types[key].name}")
    alignment = metadata[key]
    if not isinstance(alignment, int) or alignment == 0 or alignment & (alignment - 1):
        raise HeaderError(offsets[key], key, f"alignment {alignment} is not a power of two")
    return alignment


def array_strings(header: GGUFHeader, array: ArrayValue) -> list[bytes]:
    """The raw bytes of every string of a string array the header read (a vocabulary, say), from the file.

    The header already checked that the strings lie inside the file; a file that
    changed since is a HeaderError like any other.
    """
    if array.element_type != GGUFValueType.STRING:
        return []
    with open(header.path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        strings, pos = [], array.offset
        try:
            for _ in range(array.count):
                length = _U64.unpack_from(mapped, pos)[0]
                strings.append(bytes(mapped[pos + 8 : pos + 8 + length]))
                pos += 8 + length
        except struct.error:
            raise HeaderError(pos, "string array", "the file changed since its header was read") from None
    return strings


def _read_tensor_infos(cursor: _Cursor, n_tensors: int) -> tuple[TensorInfo, ...]:
    seen: set[str] = set()
    tensors = []
    for index in range(n_tensors):
        info = _read_tensor_info(cursor, index)
        if info.name in seen:
            raise HeaderError(info.info_offset, f"tensor #{index} name", f"duplicate tensor name {info.name!r}")
        seen.add(info.name)
        tensors.append(info)
    return tuple(tensors)


def _read_tensor_info(cursor: _Cursor, index: int) -> TensorInfo:
    info_at = cursor.pos
    name = cursor.string(f"tensor #{index} name")
    if len(name.encode()) >= MAX_TENSOR_NAME:
        raise HeaderError(
            info_at,
            f"tensor #{index} name",
            f"name {name[:80]!r} is {len(name.encode())} bytes; llama.cpp allows at most {MAX_TENSOR_NAME - 1}",
        )
    shape = _read_shape(cursor, name)
    type_at = cursor.pos
    ggml_type = cursor.integer(_U32, f"type of tensor {name!r}")
    _check_type(type_at, name, ggml_type, shape)
    offset = cursor.integer(_U64, f"offset of tensor {name!r}")
    return TensorInfo(name, shape, ggml_type, offset, info_at)


def _read_shape(cursor: _Cursor, name: str) -> tuple[int, ...]:
    dims_at = cursor.pos
    n_dims = cursor.integer(_U32, f"dimension count of tensor {name!r}")
    if n_dims > MAX_DIMS:
        raise HeaderError(dims_at, f"dimension count of tensor {name!r}", f"{n_dims} dimensions; ggml allows at most {MAX_DIMS}")
    shape = tuple(cursor.integer(_I64, f"dimension {axis} of tensor {name!r}") for axis in range(n_dims))
    if any(dim < 0 for dim in shape):
        raise HeaderError(dims_at, f"shape of tensor {name!r}", f"negative dimension in {shape}")
    count = 1
    for dim in shape:
        count *= dim
    if count > INT64_MAX:
        raise HeaderError(dims_at, f"shape of tensor {name!r}", f"{shape} has more than 2**63-1 elements")
    return shape


def _check_type(type_at: int, name: str, ggml_type: int, shape: tuple[int, ...]) -> None:
    field_name = f"type of tensor {name!r}"
    try:
        block_size, _ = GGML_QUANT_SIZES[GGMLQuantizationType(ggml_type)]
    except (ValueError, KeyError):
        raise HeaderError(type_at, field_name, f"unknown ggml type {ggml_type}") from None
    row = shape[0] if shape else 1
    if row % block_size:
        type_name = GGMLQuantizationType(ggml_type).name
        raise HeaderError(type_at, field_name, f"{type_name} rows of {row} elements are not a multiple of its block size {block_size}")


def align_up(offset: int, alignment: int) -> int:
    """`offset` rounded up to the next multiple of `alignment`, as GGUF pads its data section and each tensor."""
    return (offset + alignment - 1) // alignment * alignment
