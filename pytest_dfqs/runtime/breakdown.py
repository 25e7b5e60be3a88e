"""llama.cpp's own memory breakdown of a context, per buffer type: what each device holds (worker side).

`llama_get_memory_breakdown(ctx)` is the figure llama.cpp's --fit pass plans with: for every buffer type (one per
device: `CPU`, `CPU_Mapped`, `RPC0[127.0.0.1:50052]`...) the bytes of the model's weights, of the context's caches and
of the compute buffers, exact in a dry run (`no_alloc`, where the log prints 0.00 MiB for weights and caches). It is a
C++ function returning a `std::map<ggml_backend_buffer_type_t, llama_memory_breakdown_data>`; this module calls it
with the x86-64 and AArch64 convention for a returned object (the caller's storage, its address the hidden first
argument) and walks libstdc++'s red-black tree: the header node at offset 8 of the map (root, leftmost, rightmost),
the node count at offset 40; each node a 32-byte base (colour, parent, left, right) and then the pair of the key
and three `size_t`. The tree is checked against its own count before a figure is used; its nodes are left allocated
(a few dozen bytes per dry run).
"""

from __future__ import annotations

import ctypes
from typing import Any

from .bindings import libggml, llama_cpp

SYMBOL = "_Z26llama_get_memory_breakdownPK13llama_context"  # llama_get_memory_breakdown(llama_context const*)
MAP_SIZE = 48
MAP_ROOT, MAP_COUNT = 2, 5  # in size_t words of the map: the header's parent (the root), the node count
MOST_BUFFER_TYPES = 256


class BreakdownNode(ctypes.Structure):
    _fields_ = [
        ("color", ctypes.c_int),
        ("parent", ctypes.c_void_p),
        ("left", ctypes.c_void_p),
        ("right", ctypes.c_void_p),
        ("buffer_type", ctypes.c_void_p),
        ("model", ctypes.c_size_t),
        ("context", ctypes.c_size_t),
        ("compute", ctypes.c_size_t),
    ]


def _function() -> Any:
    function = getattr(llama_cpp._lib, SYMBOL, None)
    if function is not None:
        function.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        function.restype = ctypes.c_void_p
    libggml.ggml_backend_buft_name.restype = ctypes.c_char_p
    libggml.ggml_backend_buft_name.argtypes = [ctypes.c_void_p]
    libggml.ggml_backend_buft_get_device.restype = ctypes.c_void_p
    libggml.ggml_backend_buft_get_device.argtypes = [ctypes.c_void_p]
    return function


def memory_breakdown(context: Any) -> list[dict[str, Any]] | None:
    """Per buffer type: its name, its device's handle, and the model, context and compute bytes llama.cpp plans
    there; None when this llama.cpp does not export the function or its answer is not a well-formed map."""
    function = _function()
    if function is None:
        return None
    storage = (ctypes.c_char * MAP_SIZE)()
    function(ctypes.addressof(storage), context)
    words = (ctypes.c_size_t * (MAP_SIZE // ctypes.sizeof(ctypes.c_size_t))).from_buffer(storage)
    nodes = _walk(words[MAP_ROOT], words[MAP_COUNT])
    if nodes is None:
        return None
    return [
        {
            "buffer": libggml.ggml_backend_buft_name(node.buffer_type).decode("utf-8", "replace"),
            "device": libggml.ggml_backend_buft_get_device(node.buffer_type),
            "model_bytes": node.model,
            "context_bytes": node.context,
            "compute_bytes": node.compute,
        }
        for node in nodes
    ]


def _walk(root: int, count: int) -> list[BreakdownNode] | None:
    """The tree's nodes, or None when it does not hold exactly `count` of them (not the layout this reads)."""
    if count > MOST_BUFFER_TYPES:
        return None
    nodes: list[BreakdownNode] = []
    pending = [root] if root else []
    while pending and len(nodes) <= count:
        node = BreakdownNode.from_address(pending.pop())
        nodes.append(node)
        pending += [child for child in (node.left, node.right) if child]
    return nodes if len(nodes) == count else None
