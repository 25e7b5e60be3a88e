"""Hand-built GGUF bytes, for files GGUFWriter refuses to write.

Hostile and malformed headers (absurd counts, misaligned or overlapping
tensors, unknown types) need byte-level control; valid files come from
GGUFWriter through pytest_dfqs.modelfile.demo.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from gguf.constants import GGML_QUANT_SIZES, GGUF_MAGIC, GGMLQuantizationType, GGUFValueType

SCALAR_FORMATS = {
    GGUFValueType.UINT8: "<B",
    GGUFValueType.INT8: "<b",
    GGUFValueType.UINT16: "<H",
    GGUFValueType.INT16: "<h",
    GGUFValueType.UINT32: "<I",
    GGUFValueType.INT32: "<i",
    GGUFValueType.FLOAT32: "<f",
    GGUFValueType.BOOL: "<b",
    GGUFValueType.UINT64: "<Q",
    GGUFValueType.INT64: "<q",
    GGUFValueType.FLOAT64: "<d",
}


def gguf_string(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def encode_value(value_type: GGUFValueType, value: object) -> bytes:
    if value_type == GGUFValueType.STRING:
        return gguf_string(value)
    if value_type == GGUFValueType.ARRAY:
        element_type, items = value
        body = b"".join(encode_value(element_type, item) for item in items)
        return struct.pack("<IQ", element_type, len(items)) + body
    return struct.pack(SCALAR_FORMATS[value_type], value)


@dataclass
class RawTensor:
    name: str
    shape: tuple[int, ...]
    ggml_type: int = GGMLQuantizationType.F32
    offset: int | None = None  # None: packed after the previous tensor

    def nbytes(self) -> int:
        block, size = GGML_QUANT_SIZES[GGMLQuantizationType(self.ggml_type)]
        count = 1
        for dim in self.shape:
            count *= dim
        return count // block * size


@dataclass
class RawGGUF:
    """A GGUF file described field by field; `build()` gives its bytes."""

    kv: list[tuple[str, GGUFValueType, object]] = field(default_factory=list)
    tensors: list[RawTensor] = field(default_factory=list)
    version: int = 3
    magic: int = GGUF_MAGIC
    alignment: int = 32
    n_kv: int | None = None
    n_tensors: int | None = None
    with_data: bool = True

    def header_bytes(self) -> bytes:
        parts = [
            struct.pack(
                "<IIqq",
                self.magic,
                self.version,
                len(self.tensors) if self.n_tensors is None else self.n_tensors,
                len(self.kv) if self.n_kv is None else self.n_kv,
            )
        ]
        parts += [gguf_string(key) + struct.pack("<I", vtype) + encode_value(vtype, value) for key, vtype, value in self.kv]
        parts += [self._tensor_info(tensor, offset) for tensor, offset in zip(self.tensors, self.offsets())]
        return b"".join(parts)

    def offsets(self) -> list[int]:
        offsets, position = [], 0
        for tensor in self.tensors:
            offset = position if tensor.offset is None else tensor.offset
            offsets.append(offset)
            position = _pad(offset + tensor.nbytes(), self.alignment)
        return offsets

    @staticmethod
    def _tensor_info(tensor: RawTensor, offset: int) -> bytes:
        dims = struct.pack(f"<I{len(tensor.shape)}q", len(tensor.shape), *tensor.shape)
        return gguf_string(tensor.name) + dims + struct.pack("<IQ", tensor.ggml_type, offset)

    def data_size(self) -> int:
        """The data a writer would append: every tensor padded, back to back."""
        return sum(_pad(t.nbytes(), self.alignment) for t in self.tensors)

    def build(self) -> bytes:
        header = self.header_bytes()
        if not self.tensors or not self.with_data:
            return header
        padding = b"\0" * (_pad(len(header), self.alignment) - len(header))
        return header + padding + bytes(self.data_size())

    def write(self, path: Path) -> Path:
        path.write_bytes(self.build())
        return path


def _pad(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


def minimal_model() -> RawGGUF:
    """A small, valid, standalone llama-style file built by hand."""
    return RawGGUF(
        kv=[
            ("general.architecture", GGUFValueType.STRING, "llama"),
            ("llama.block_count", GGUFValueType.UINT32, 1),
            ("llama.context_length", GGUFValueType.UINT32, 2048),
            ("tokenizer.ggml.model", GGUFValueType.STRING, "llama"),
            ("tokenizer.ggml.tokens", GGUFValueType.ARRAY, (GGUFValueType.STRING, ["<unk>", "<s>", "</s>", "a"])),
        ],
        tensors=[
            RawTensor("token_embd.weight", (8, 4)),
            RawTensor("blk.0.attn_norm.weight", (8,)),
            RawTensor("output.weight", (8, 4)),
        ],
    )
