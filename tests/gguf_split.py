"""Split a GGUF file exactly as llama.cpp's `llama-gguf-split --split --split-max-tensors N` writes its shards.

The tests need split releases as they are published, and llama.cpp's own tool
is not installed (llama-cpp-python ships the library only). What the tool
writes, read from tools/gguf-split/gguf-split.cpp and ggml/src/gguf.cpp of the
llama.cpp llama-cpp-python 0.3.36 vendors:

- shard k holds the input's tensors k*N to (k+1)*N - 1, in the input's order
  (`should_split`: a new shard at every tensor index that is a multiple of N);
- the first shard carries every key/value of the input (`gguf_set_kv`, which
  writes each entry back as it was read), the others none; every shard then
  gets `split.no` (u16), `split.tensors.count` (i32) and `split.count` (u16),
  in that order: `split.count` is set twice, and `gguf_set_val_*` removes a key
  and appends it again;
- every output context comes from `gguf_init_empty`, whose alignment is
  GGUF_DEFAULT_ALIGNMENT (32) whatever `general.alignment` the first shard
  copies: tensor offsets, the header padding and the padding after each tensor
  all use 32;
- tensor infos carry `ggml_n_dims` dimensions (trailing 1s dropped, at least
  one); the file is GGUF version 3; shards are named by `llama_split_path`.

llama.cpp is the judge that this is right: tests/modelfile/test_split.py loads
the helper's shards with llama.cpp and compares its output with the unsplit file.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

from gguf.constants import GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_VERSION, GGUFValueType, Keys

from pytest_dfqs.modelfile.header import GGUFHeader, TensorInfo, read_header

from .gguf_bytes import RawGGUF, RawTensor, encode_value, gguf_string

COPY_CHUNK = 16 << 20


def split_gguf(source: Path, output_prefix: Path, max_tensors: int) -> list[Path]:
    """Write the shards of `source` as `OUTPUT_PREFIX-0000k-of-0000n.gguf`; their paths, first to last."""
    header = read_header(source)
    assert not any(key.startswith("split.") for key in header.metadata), "gguf-split would rewrite existing split keys"
    groups = [header.tensors[start : start + max_tensors] for start in range(0, len(header.tensors), max_tensors)]
    paths = [output_prefix.with_name(f"{output_prefix.name}-{k + 1:05d}-of-{len(groups):05d}.gguf") for k in range(len(groups))]
    with open(source, "rb") as data:
        for number, (path, tensors) in enumerate(zip(paths, groups)):
            with open(path, "wb") as shard:
                shard.write(_shard_header(header, number, len(groups), tensors))
                for tensor in tensors:
                    _copy_tensor(data, shard, header.data_offset + tensor.offset, tensor.nbytes)
    return paths


def _shard_header(header: GGUFHeader, number: int, count: int, tensors: tuple[TensorInfo, ...]) -> bytes:
    kv = _input_kv(header) if number == 0 else b""
    n_kv = (len(header.metadata) if number == 0 else 0) + 3
    kv += _kv(Keys.Split.LLM_KV_SPLIT_NO, GGUFValueType.UINT16, number)
    kv += _kv(Keys.Split.LLM_KV_SPLIT_TENSORS_COUNT, GGUFValueType.INT32, len(header.tensors))
    kv += _kv(Keys.Split.LLM_KV_SPLIT_COUNT, GGUFValueType.UINT16, count)
    raw = RawGGUF(tensors=[RawTensor(t.name, _ggml_dims(t.shape), t.ggml_type) for t in tensors], alignment=GGUF_DEFAULT_ALIGNMENT)
    infos = b"".join(RawGGUF._tensor_info(tensor, offset) for tensor, offset in zip(raw.tensors, raw.offsets()))
    content = struct.pack("<IIqq", GGUF_MAGIC, GGUF_VERSION, len(tensors), n_kv) + kv + infos
    return content + bytes(_pad(len(content)) - len(content))


def _input_kv(header: GGUFHeader) -> bytes:
    """The input's key/value entries as gguf_set_kv writes them back: the same bytes."""
    start = min(header.metadata_offsets.values(), default=header.metadata_end)
    with open(header.path, "rb") as handle:
        handle.seek(start)
        return handle.read(header.metadata_end - start)


def _kv(key: str, value_type: GGUFValueType, value: int) -> bytes:
    return gguf_string(key) + struct.pack("<I", value_type) + encode_value(value_type, value)


def _ggml_dims(shape: tuple[int, ...]) -> tuple[int, ...]:
    """ggml_n_dims: the dimensions up to the last one above 1, at least one."""
    ne = (*shape, *(1,) * (4 - len(shape)))
    n_dims = next((axis + 1 for axis in range(3, 0, -1) if ne[axis] > 1), 1)
    return ne[:n_dims]


def _copy_tensor(source: BinaryIO, target: BinaryIO, offset: int, nbytes: int) -> None:
    source.seek(offset)
    left = nbytes
    while left:
        chunk = source.read(min(left, COPY_CHUNK))
        assert chunk, f"{source.name} ends inside a tensor at byte {source.tell()}"
        target.write(chunk)
        left -= len(chunk)
    target.write(bytes(_pad(nbytes) - nbytes))


def _pad(size: int) -> int:
    return (size + GGUF_DEFAULT_ALIGNMENT - 1) // GGUF_DEFAULT_ALIGNMENT * GGUF_DEFAULT_ALIGNMENT
