"""llama.cpp in a process of its own: the model worker.

The runtime tier loads a model once per session in this worker and talks to it
with one JSON line per request and per answer. When llama.cpp aborts or
segfaults, only the worker dies: the pytest process reports the signal and the
last lines of llama.cpp's log and carries on.

Run as `python -m pytest_dfqs.runtime.worker`. The protocol travels on a private
copy of the original stdout; file descriptor 1 is pointed at stderr so that
nothing llama.cpp prints can corrupt it.
"""

from __future__ import annotations

import base64
import ctypes
import json
import os
import re
import resource
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TextIO

from .bindings import imported_on_first_use, libggml, llama_cpp
from .breakdown import memory_breakdown
from .continuous_batch import ContinuousBatch, Reply, advance
from .prompt_cache import PromptSlots
from .shared_prefix import SLOTS, declared_prefix, stream_cells

if TYPE_CHECKING:
    import numpy as np
else:
    np = imported_on_first_use("numpy")  # by the runtime tier's requests; a dry run never needs it

# The selected experts may be a view ("ffn_moe_topk-3 (view)"); scores are taken only from the
# nodes themselves, not from their reshaped copies.
TRACE_NODE = re.compile(r"ffn_moe_(topk)-(\d+)(?: \(.*\))?|ffn_moe_(probs|probs_biased|probs_masked)-(\d+)")
SCORE_PREFERENCE = ("probs_masked", "probs_biased", "probs")  # the scores that selection used
GGML_TYPE_I32 = 26
GGML_TYPE_F32 = 0
ACCELERATOR_TYPES = {1: "GPU", 2: "integrated GPU"}  # enum ggml_backend_dev_type
REFERENCE_BATCH = 512
PROGRESS_PREFIX = "dfqs-progress: "  # a line of the worker's log that the client turns into a progress line
PROGRESS_EVERY_S = 5.0
HAYSTACK_SEQUENCES = 2  # the haystack, and the copy a question is asked in
KEPT_LINES = (b" MiB", b" assigned to device ")  # llama.cpp's log lines that state buffer sizes and where layers go
Context = llama_cpp.llama_context_p  # a llama_context pointer


class MallInfo2(ctypes.Structure):
    """glibc's struct mallinfo2: how much of the C heap is in use."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")
    ]


def _mallinfo2() -> Callable[[], MallInfo2] | None:
    function = getattr(ctypes.CDLL(None), "mallinfo2", None)
    if function is not None:
        function.restype = MallInfo2
    return function


MALLINFO2 = _mallinfo2()


def heap_in_use() -> int:
    """Bytes of C heap in use (glibc: mmapped chunks + allocated arena); elsewhere the peak resident set."""
    if MALLINFO2 is not None:
        info = MALLINFO2()
        return int(info.hblkhd + info.uordblks)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


class LlamaLog:
    """llama.cpp's log, passed on as the bytes it wrote, with the lines that state memory sizes and placements kept apart.

    The names it quotes come from the model and need not be UTF-8 (llama-cpp-python's own
    callback decodes them as UTF-8 and drops the line when that fails).
    """

    def __init__(self) -> None:
        self.kept_lines: list[str] = []
        self.callback = llama_cpp.llama_log_callback(self._write)

    def _write(self, _level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
        os.write(2, text)
        if any(kept in text for kept in KEPT_LINES):
            self.kept_lines.append(text.decode("utf-8", "replace").strip())

    def since(self, mark: int) -> list[str]:
        return self.kept_lines[mark:]


LOG = LlamaLog()


class GgmlTensor(ctypes.Structure):
    """The head of ggml.h's struct ggml_tensor, enough to read a node's name and data."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("buffer", ctypes.c_void_p),
        ("ne", ctypes.c_int64 * 4),
        ("nb", ctypes.c_size_t * 4),
        ("op", ctypes.c_int),
        ("op_params", ctypes.c_int32 * 16),
        ("flags", ctypes.c_int32),
        ("src", ctypes.c_void_p * 10),
        ("view_src", ctypes.c_void_p),
        ("view_offs", ctypes.c_size_t),
        ("data", ctypes.c_void_p),
        ("name", ctypes.c_char * 64),
    ]


class RoutingRecorder:
    """Collects selected expert ids and router scores per layer, one row per token of each ubatch.

    llama.cpp may reorder the tokens of a batch into ubatches (the DeepSeek-V4
    cache splits sequences into equal chunks), so the recorder also reads each
    ubatch's token ids (the embedding lookup's `inp_tokens` input) and
    positions (the first node fed by `inp_pos`): rows are matched to sequences
    by (token, position), not by an assumed order. With `trace_from`, only rows
    at that position or later are kept: a routing probe behind a long context
    fill keeps the prompt's rows, not the fill's (43 layers x 256 router scores
    per token would be hundreds of MB).
    """

    def __init__(self) -> None:
        self.rows: dict[str, dict[int, list]] = defaultdict(lambda: defaultdict(list))
        self.tokens: list[int] = []
        self.positions: list[int] = []
        self.trace_from = 0  # the first position whose rows are kept
        self._positions_due = 0  # tokens of the current ubatch whose positions are still to be read
        self._keep: list[bool] | None = None  # per row of the current ubatch: kept (position >= trace_from)
        self.failures = 0
        self.callback = llama_cpp.ggml_backend_sched_eval_callback(self._observe)

    def _observe(self, tensor: int, ask: bool, _user_data: int) -> bool:
        try:
            node = GgmlTensor.from_address(tensor)
            match = TRACE_NODE.fullmatch(node.name.decode("utf-8", "replace"))
            sources = _source_names(node)
            embedding = sources[:2] == ["token_embd.weight", "inp_tokens"]
            positions = bool(self._positions_due) and "inp_pos" in sources
            if ask:
                return match is not None or embedding or positions
            if match:
                kind, layer = (match[1], match[2]) if match[1] else (match[3], match[4])
                self.rows[kind][int(layer)].extend(self._kept(_read_rows(node)))
            elif embedding:
                ubatch_tokens = _read_vector(node.src[1])
                self.tokens += ubatch_tokens
                self._positions_due, self._keep = len(ubatch_tokens), None
            elif positions:
                # M-RoPE models store several positions per token: the first block is the sequence position
                self._take_positions(_read_vector(node.src[sources.index("inp_pos")])[: self._positions_due])
        except Exception:  # an exception must not escape into ggml: it would stop the computation
            self.failures += 1
        return True

    def _take_positions(self, ubatch: list[int]) -> None:
        """The current ubatch's positions; under `trace_from`, its tokens before that position are dropped."""
        self._keep = [position >= self.trace_from for position in ubatch]
        tokens = self.tokens[len(self.tokens) - len(ubatch) :]
        del self.tokens[len(self.tokens) - len(ubatch) :]
        self.tokens += [token for token, keep in zip(tokens, self._keep) if keep]
        self.positions += [position for position, keep in zip(ubatch, self._keep) if keep]
        self._positions_due = 0

    def _kept(self, rows: list) -> list:
        """The rows of the current ubatch at `trace_from` or later (all of them without it)."""
        if not self.trace_from:
            return rows
        if self._keep is None or len(self._keep) != len(rows):
            raise ValueError("a routing node came before its ubatch's positions")
        return [row for row, keep in zip(rows, self._keep) if keep]

    def take(self) -> dict[str, Any]:
        """The trace so far: selected experts, scores, and the (token, position) of every row; then start afresh."""
        scores_kind = next((kind for kind in SCORE_PREFERENCE if self.rows.get(kind)), None)
        trace = {
            "topk": {str(layer): rows for layer, rows in sorted(self.rows.get("topk", {}).items())},
            "scores": {str(layer): encode_matrix(rows) for layer, rows in sorted(self.rows[scores_kind].items())} if scores_kind else {},
            "scores_kind": scores_kind,
            "tokens": self.tokens,
            "positions": self.positions,
            "callback_failures": self.failures,
        }
        self.rows.clear()
        self.tokens, self.positions, self._positions_due, self.failures, self.trace_from = [], [], 0, 0, 0
        return trace


def _source_names(node: GgmlTensor) -> list[str]:
    """The names of a node's sources; an input the scheduler copied to another backend ("RPC0[...]#inp_pos#0") by its own."""
    names = [GgmlTensor.from_address(source).name.decode("utf-8", "replace") if source else "" for source in node.src]
    return [name.split("#")[1] if name.count("#") == 2 else name for name in names]


def _read_vector(address: int) -> list[int]:
    """The values of a 1D I32 input tensor."""
    source = GgmlTensor.from_address(address)
    return list((ctypes.c_int32 * source.ne[0]).from_buffer(_host_copy(source, source.ne[0] * 4)))


def _host_copy(node: GgmlTensor, size: int) -> ctypes.Array[ctypes.c_char]:
    """The first `size` bytes of a tensor's data, wherever its buffer is (`ggml_backend_tensor_get`: a memcpy for a
    tensor in host memory, a GET_TENSOR round trip for one on an rpc-server)."""
    libggml.ggml_backend_tensor_get.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t]
    libggml.ggml_backend_tensor_get.restype = None
    data = (ctypes.c_char * size)()
    libggml.ggml_backend_tensor_get(ctypes.addressof(node), data, 0, size)
    return data


def accelerator_devices() -> list[str]:
    """Names of the GPU devices ggml's backends found on this machine."""
    libggml.ggml_backend_dev_count.restype = ctypes.c_size_t
    libggml.ggml_backend_dev_get.restype = ctypes.c_void_p
    libggml.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
    libggml.ggml_backend_dev_type.restype = ctypes.c_int
    libggml.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
    libggml.ggml_backend_dev_description.restype = ctypes.c_char_p
    libggml.ggml_backend_dev_description.argtypes = [ctypes.c_void_p]
    devices = [libggml.ggml_backend_dev_get(index) for index in range(libggml.ggml_backend_dev_count())]
    return [
        f"{ACCELERATOR_TYPES[kind]}: {libggml.ggml_backend_dev_description(device).decode('utf-8', 'replace')}"
        for device in devices
        if (kind := libggml.ggml_backend_dev_type(device)) in ACCELERATOR_TYPES
    ]


def rpc_devices(endpoints: list[str]) -> list[dict[str, Any]]:
    """Each rpc-server's devices, registered with ggml's RPC backend (`ggml_backend_rpc_add_server`): handle, name, memory."""
    rpc = ctypes.CDLL(os.path.join(os.path.dirname(llama_cpp.__file__), "lib", "libggml-rpc.so"))
    rpc.ggml_backend_rpc_add_server.restype = ctypes.c_void_p
    rpc.ggml_backend_rpc_add_server.argtypes = [ctypes.c_char_p]
    libggml.ggml_backend_reg_dev_count.restype = ctypes.c_size_t
    libggml.ggml_backend_reg_dev_count.argtypes = [ctypes.c_void_p]
    libggml.ggml_backend_reg_dev_get.restype = ctypes.c_void_p
    libggml.ggml_backend_reg_dev_get.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libggml.ggml_backend_dev_name.restype = ctypes.c_char_p
    libggml.ggml_backend_dev_name.argtypes = [ctypes.c_void_p]
    libggml.ggml_backend_dev_memory.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_size_t)]
    devices = []
    for endpoint in endpoints:
        registry = rpc.ggml_backend_rpc_add_server(endpoint.encode())
        for index in range(libggml.ggml_backend_reg_dev_count(registry)):
            device = libggml.ggml_backend_reg_dev_get(registry, index)
            free, total = ctypes.c_size_t(), ctypes.c_size_t()
            libggml.ggml_backend_dev_memory(device, ctypes.byref(free), ctypes.byref(total))
            name = libggml.ggml_backend_dev_name(device).decode("utf-8", "replace")
            devices.append({"handle": device, "endpoint": endpoint, "name": name, "free_bytes": free.value, "total_bytes": total.value})
    return devices


def device_split(devices: list[dict[str, Any]], endpoints: list[str], shares: list[float]) -> Any:
    """llama_model_params.tensor_split: each endpoint's share divided among its devices (all zero: by free memory)."""
    split = (ctypes.c_float * llama_cpp.llama_max_devices())()
    for index, device in enumerate(devices[: len(split)]):
        if shares:
            share = shares[endpoints.index(device["endpoint"])]
            split[index] = share / sum(other["endpoint"] == device["endpoint"] for other in devices)
    return split


def placed_on(devices: list[dict[str, Any]]) -> Any:
    """llama_model_params.devices: a NULL-terminated array of device handles (kept alive by the caller)."""
    return (ctypes.c_void_p * (len(devices) + 1))(*[device["handle"] for device in devices], None)


def context_params(n_ctx: int, n_batch: int, n_ubatch: int, n_seq: int, unified: bool = True) -> llama_cpp.llama_context_params:
    """One KV cache for all sequences, batches split in order; or (`unified` off) a KV stream per sequence."""
    params: llama_cpp.llama_context_params = llama_cpp.llama_context_default_params()
    params.n_ctx, params.n_batch, params.n_ubatch = n_ctx, n_batch, n_ubatch
    params.n_seq_max, params.kv_unified = n_seq, unified
    return params


def new_context(model: Any, params: llama_cpp.llama_context_params) -> Context:
    context: Context = llama_cpp.llama_init_from_model(model, params)
    if not context:
        raise RuntimeError(
            f"llama.cpp could not create a context of {params.n_ctx} tokens (n_batch {params.n_batch}, n_ubatch {params.n_ubatch})"
        )
    return context


def _read_rows(node: GgmlTensor) -> list:
    """Rows of a 2D tensor, wherever its buffer is, honouring the row stride of views.

    Selected experts (I32) come back as lists of ids; router scores (F32) as
    float32 arrays, which travel to the client as base64 (256 experts x 43
    layers x hundreds of tokens would be tens of MB of JSON numbers).
    """
    if node.type not in (GGML_TYPE_I32, GGML_TYPE_F32):
        raise TypeError(f"unexpected ggml type {node.type}")
    width, rows, stride = node.ne[0], node.ne[1], node.nb[1]
    data = _host_copy(node, (rows - 1) * stride + width * 4) if rows else (ctypes.c_char * 0)()
    if node.type == GGML_TYPE_I32:
        return [list((ctypes.c_int32 * width).from_buffer(data, row * stride)) for row in range(rows)]
    return [np.frombuffer(memoryview(data), dtype=np.float32, count=width, offset=row * stride).copy() for row in range(rows)]


def encode_matrix(rows: list[np.ndarray]) -> dict[str, Any]:
    matrix = np.stack(rows).astype(np.float32) if rows else np.zeros((0, 0), dtype=np.float32)
    return {"dtype": "float32", "shape": list(matrix.shape), "base64": base64.b64encode(matrix.tobytes()).decode("ascii")}


def top_logprobs(logits: np.ndarray, k: int, probe: list[int] | None = None) -> dict[str, Any]:
    """The k most likely next tokens with their log-probabilities, the probability the rest holds, and the probed ids' log-probabilities."""
    row = logits.astype(np.float64)
    top = row.max()
    log_total = top + np.log(np.exp(row - top).sum())
    ids = np.argpartition(row, -k)[-k:] if k < row.size else np.arange(row.size)
    ids = ids[np.argsort(-row[ids], kind="stable")]
    logprobs = row[ids] - log_total
    entry: dict[str, Any] = {"ids": [int(i) for i in ids], "logprobs": [float(v) for v in logprobs]}
    entry["rest"] = float(max(0.0, 1.0 - np.exp(logprobs).sum()))
    if probe is not None:
        entry["probed"] = [float(row[i] - log_total) if 0 <= i < row.size else None for i in probe]
    return entry


class NextTokens:
    """Top-k next-token distributions at every position of every sequence (what a routing trace records)."""

    def __init__(self, k: int, sequences: int, probe: list[list[list[int]]] | None = None) -> None:
        self.k = k
        self.probe = probe  # per sequence, per position: token ids whose log-probabilities are wanted too
        self.rows: list[dict[int, dict[str, Any]]] = [{} for _ in range(sequences)]

    def add(self, seq: int, position: int, logits: np.ndarray) -> None:
        if self.k:
            probe = self.probe[seq][position] if self.probe and position < len(self.probe[seq]) else None
            self.rows[seq][position] = top_logprobs(logits, self.k, probe)

    def result(self) -> list[list[dict[str, Any]]] | None:
        return [[rows[position] for position in sorted(rows)] for rows in self.rows] if self.k else None


class ModelWorker:
    """One loaded model and the contexts the probes ask for."""

    def __init__(self) -> None:
        self.model = None
        self.vocab = None
        self.vocab_model = None  # a vocabulary-only load, for the work plan before the model is loaded
        self.loads = 0
        self.recorder = RoutingRecorder()
        self.slots: PromptSlots | None = None  # the prompt cache of `complete`'s context, when it reuses prefixes
        self.batch: ContinuousBatch | None = None  # `complete_many`'s sequences and the prefixes they keep
        self.contexts: dict[tuple[int, int, int, int, bool, bool], Context] = {}
        self.haystack: tuple[int, int, int, int, bool, bool] | None = None  # the context key of `haystack_begin`'s text
        self.haystack_end = 0  # how many tokens it holds
        self.leftovers: list[Callable[[], None]] = []  # what `tidy` frees once an answer is out
        self.devices: list[dict[str, Any]] = []  # the rpc-servers' devices the model was placed on
        self._placement: Any = None  # their NULL-terminated array, alive as long as the model

    def _load_model(self, path: str, what: str, placement: dict[str, Any] | None = None, **settings: Any) -> Any:
        """llama_model_load_from_file with these model parameters, the layers on the rpc-servers' devices when
        `placement` names some (its `offloaded` layers, shared by its `split` or by their free memory); its refusal
        raises, naming what was loaded."""
        llama_cpp.llama_backend_init()
        params = llama_cpp.llama_model_default_params()
        for name, value in settings.items():
            setattr(params, name, value)
        if placement:
            self.devices = rpc_devices(placement["rpc"])
            self._placement = placed_on(self.devices), device_split(self.devices, placement["rpc"], placement["split"])
            params.devices = ctypes.cast(self._placement[0], ctypes.c_void_p)
            params.tensor_split = ctypes.cast(self._placement[1], ctypes.POINTER(ctypes.c_float))
            params.n_gpu_layers = placement["offloaded"]
        model = llama_cpp.llama_model_load_from_file(path.encode(), params)
        if not model:
            raise RuntimeError(f"llama.cpp could not load {what} of {path} (its log says why)")
        return model

    def placement_of(self, context: Context) -> list[dict[str, Any]]:
        """llama.cpp's memory breakdown of a context per buffer, each buffer's device named by its rpc-server's
        endpoint (None: this machine)."""
        endpoints = {device["handle"]: device["endpoint"] for device in self.devices}
        buffers = memory_breakdown(context) or []
        return [{**{k: v for k, v in entry.items() if k != "device"}, "endpoint": endpoints.get(entry["device"])} for entry in buffers]

    def plan_memory(
        self, path: str, n_ctx: int, n_batch: int, n_ubatch: int, n_seq: int, placement: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """llama.cpp's own dry run (`no_alloc`, as its --fit pass does): the model and a context, no buffers allocated.

        Returns the buffer and cache sizes llama.cpp logs for it, the weights' bytes, and the heap
        llama.cpp took for everything else (graph and scheduler metadata, vocabulary), which no log line states.
        """
        mark, heap = len(LOG.kept_lines), heap_in_use()
        model = self._load_model(
            path, "the model's metadata for a dry run", placement, no_alloc=True, load_mode=llama_cpp.LLAMA_LOAD_MODE_NONE
        )
        self.leftovers.append(lambda: llama_cpp.llama_model_free(model))
        context = new_context(model, context_params(n_ctx, n_batch, n_ubatch, n_seq))
        overhead = heap_in_use() - heap
        self.leftovers.insert(0, lambda: llama_cpp.llama_free(context))
        return {
            **model_identity(model),
            "weights_bytes": llama_cpp.llama_model_size(model),
            "n_vocab": llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(model)),
            "overhead_bytes": max(overhead, 0),
            "lines": LOG.since(mark),
            "buffers": self.placement_of(context) if placement else [],  # the per-server plan reads it, a local one does not
            "rpc_devices": self.rpc_devices(),
        }

    def tidy(self) -> None:
        """Free what the last request left for after its answer (a dry run's model and context: freeing them takes a while)."""
        while self.leftovers:
            self.leftovers.pop(0)()

    def load(self, path: str, n_gpu_layers: int = 0, placement: dict[str, Any] | None = None) -> dict[str, Any]:
        """Load the model; CPU only unless the GPU comparison asks for offloaded layers or `placement` names rpc-servers."""
        started = time.perf_counter()
        mark = len(LOG.kept_lines)
        model = self._load_model(path, "the model", placement, n_gpu_layers=n_gpu_layers)
        self.model, self.loads = model, self.loads + 1
        self.vocab = llama_cpp.llama_model_get_vocab(model)
        return {"load_seconds": time.perf_counter() - started, "lines": LOG.since(mark), **self.describe()}

    def describe(self) -> dict[str, Any]:
        return {
            **model_identity(self.model),
            "size_bytes": llama_cpp.llama_model_size(self.model),
            "n_vocab": llama_cpp.llama_vocab_n_tokens(self.vocab),
            "loads": self.loads,
            "pid": os.getpid(),
            "system_info": llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip(),
            "gpu_offload_supported": bool(llama_cpp.llama_supports_gpu_offload()),
            "gpu_devices": accelerator_devices(),
            "rpc_devices": self.rpc_devices(),
            "chat_template": self._chat_template(),
        }

    def rpc_devices(self) -> list[dict[str, Any]]:
        return [{key: value for key, value in device.items() if key != "handle"} for device in self.devices]

    def _chat_template(self) -> str | None:
        template = llama_cpp.llama_model_chat_template(self.model, None)
        return template.decode("utf-8", "replace") if template else None

    def stats(self) -> dict[str, Any]:
        return {"peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "loads": self.loads, "pid": os.getpid()}

    def context(self, n_ctx: int, n_batch: int, n_ubatch: int, n_seq: int, trace: bool, unified: bool = True) -> Context:
        """The context for these settings; only one is kept, its KV cache can be large."""
        key = (n_ctx, n_batch, n_ubatch, n_seq, trace, unified)
        if key not in self.contexts:
            for old in self.contexts.values():
                llama_cpp.llama_free(old)
            self.contexts.clear()
            self.slots = None
            params = context_params(n_ctx, n_batch, n_ubatch, n_seq, unified)
            if trace:
                params.cb_eval = self.recorder.callback
            self.contexts[key] = new_context(self.model, params)
        return self.contexts[key]

    def fresh_context(self, n_ctx: int, n_batch: int, n_ubatch: int, n_seq: int, trace: bool, n_threads: int) -> Context:
        """The context for these settings, at `n_threads`, with an empty memory."""
        context = self.context(n_ctx, n_batch, n_ubatch, n_seq, trace)
        llama_cpp.llama_set_n_threads(context, n_threads, n_threads)
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(context), True)
        return context

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        return tokenized(self.vocab, text, add_special)

    def planned_tokens(
        self, path: str, texts: dict[str, list[str]], conversations: dict[str, list[list[dict[str, str]]]]
    ) -> dict[str, Any]:
        """The model's own tokens (without special ones) of `texts`, and of `conversations` as llama.cpp renders its chat
        template (None where it cannot), by name, with the special tokens a prompt begins with: for the work plan,
        from the loaded model, else from a vocabulary-only load of `path` (kept)."""
        if self.model is None and self.vocab_model is None:
            self.vocab_model = self._load_model(path, "the model's vocabulary", vocab_only=True)
        model = self.model or self.vocab_model
        vocab = llama_cpp.llama_model_get_vocab(model)
        template = llama_cpp.llama_model_chat_template(model, None)

        def rendered(messages: list[dict[str, str]]) -> list[int] | None:
            text = apply_template(template, messages) if template else None
            return None if text is None else tokenized(vocab, text, False)

        return {
            "special": len(tokenized(vocab, "", True)),
            "texts": {name: [tokenized(vocab, text, False) for text in listed] for name, listed in texts.items()},
            "conversations": {name: [rendered(messages) for messages in asked] for name, asked in conversations.items()},
        }

    def prompt_timing(self, tokens: list[int], decoded: int, n_threads: int) -> list[float]:
        """Seconds llama.cpp takes for `tokens` as one batch, and per token for `decoded` more decoded one at a time
        after them: a batch's and a reply's cost, warm (the work plan's time estimate)."""
        context = self.fresh_context(len(tokens) + decoded, REFERENCE_BATCH, REFERENCE_BATCH, 1, False, n_threads)
        begun = time.perf_counter()
        self._feed(context, [(0, position, token) for position, token in enumerate(tokens)], REFERENCE_BATCH, False)
        batch = time.perf_counter() - begun
        begun = time.perf_counter()
        for step in range(decoded):
            self._decode(context, [(0, len(tokens) + step, tokens[step])], [True])
        return [batch, (time.perf_counter() - begun) / max(decoded, 1)]

    def detokenize(self, tokens: list[int]) -> str:
        """The text of `tokens`; a buffer too small (a vocabulary entry can be any length) is grown to what llama.cpp asks."""
        array = (llama_cpp.llama_token * len(tokens))(*tokens)
        capacity = 16 * len(tokens) + 64
        for _ in range(2):
            buffer = ctypes.create_string_buffer(capacity)
            count = llama_cpp.llama_detokenize(self.vocab, array, len(tokens), buffer, capacity, False, False)
            if count >= 0:
                return buffer.raw[:count].decode("utf-8", "replace")
            capacity = -count
        raise RuntimeError(f"llama_detokenize asked for {capacity} bytes and again for more")

    def evaluate(
        self,
        prompts: list[str],
        n_predict: int,
        n_ctx: int,
        n_threads: int,
        n_batch: int,
        n_ubatch: int,
        trace: bool,
        token_prompts: list[list[int]] | None = None,
        top_k: int = 0,
        probe: list[list[list[int]]] | None = None,
        trace_from: int = 0,
    ) -> dict[str, Any]:
        """Decode each prompt as its own sequence of one batch, then greedily extend them together.

        `token_prompts` gives prompts as token ids instead of text. With `top_k`, every
        position's top-k next tokens come back (`next_tokens`), with the log-probabilities
        of the ids `probe` names per sequence and position. `trace_from` keeps routing
        rows from that position on only.
        """
        sequences = token_prompts or [self.tokenize(prompt) for prompt in prompts]
        context = self.fresh_context(n_ctx, n_batch, n_ubatch, len(sequences), trace, n_threads)
        self.recorder.take()
        self.recorder.trace_from = trace_from
        next_tokens = NextTokens(top_k, len(sequences), probe)
        started = time.perf_counter()
        last_logits = self._decode_prompts(context, sequences, n_batch, all_logits=trace or bool(top_k), next_tokens=next_tokens)
        prompt_seconds = time.perf_counter() - started
        generated, gaps, decode_seconds, nonfinite = self._generate(context, sequences, last_logits, n_predict, next_tokens)
        return {
            "next_tokens": next_tokens.result(),
            "prompt_tokens": sequences if token_prompts is None else [len(tokens) for tokens in sequences],
            "nonfinite_steps": nonfinite,
            "generated": generated,
            "top2_gaps": gaps,
            "prompt_seconds": prompt_seconds,
            "decode_seconds": decode_seconds,
            "trace": self.recorder.take() if trace else None,
        }

    def _decode_prompts(
        self, context: Context, sequences: list[list[int]], n_batch: int, all_logits: bool, next_tokens: NextTokens | None = None
    ) -> list[np.ndarray]:
        """Feed all prompt tokens in batch order, n_batch at a time; returns each sequence's last logits."""
        if not all(sequences):
            raise ValueError("a prompt tokenized to no tokens")
        items = [(seq, pos, token) for seq, tokens in enumerate(sequences) for pos, token in enumerate(tokens)]
        last = self._feed(context, items, n_batch, all_logits, next_tokens)
        return [last[seq] for seq in range(len(sequences))]

    def _feed(
        self, context: Context, items: list[tuple[int, int, int]], n_batch: int, all_logits: bool, next_tokens: NextTokens | None = None
    ) -> dict[int, np.ndarray]:
        """Feed (sequence, position, token) items in order, n_batch at a time; the logits after each sequence's last one."""
        ends = {seq: pos for seq, pos, _ in items}  # the items of a sequence come in position order
        last: dict[int, np.ndarray] = {}
        reported = time.monotonic()
        for start in range(0, len(items), n_batch):
            chunk = items[start : start + n_batch]
            self._decode(context, chunk, [all_logits or pos == ends[seq] for seq, pos, _ in chunk])
            if time.monotonic() - reported >= PROGRESS_EVERY_S:  # a long fill tells how far it is
                reported = time.monotonic()
                os.write(2, f"\n{PROGRESS_PREFIX}{start + len(chunk):,} of {len(items):,} prompt tokens decoded\n".encode())
            for index, (seq, pos, _) in enumerate(chunk):
                if next_tokens is not None and all_logits:
                    next_tokens.add(seq, pos, self._logits(context, index))
                if pos == ends[seq]:
                    last[seq] = self._logits(context, index).copy()  # rows are overwritten by the next decode
        return last

    def _decode(self, context: Context, items: list[tuple[int, int, int]], wants_logits: list[bool]) -> None:
        batch = llama_cpp.llama_batch_init(len(items), 0, 1)
        try:
            for index, (seq, pos, token) in enumerate(items):
                batch.token[index] = token
                batch.pos[index] = pos
                batch.n_seq_id[index] = 1
                batch.seq_id[index][0] = seq
                batch.logits[index] = wants_logits[index]
            batch.n_tokens = len(items)
            status = llama_cpp.llama_decode(context, batch)
            if status != 0:
                raise RuntimeError(f"llama_decode returned {status} for a batch of {len(items)} tokens")
        finally:
            llama_cpp.llama_batch_free(batch)

    def _logits(self, context: Context, row: int) -> np.ndarray:
        pointer = llama_cpp.llama_get_logits_ith(context, row)
        return np.ctypeslib.as_array(pointer, shape=(llama_cpp.llama_vocab_n_tokens(self.vocab),))

    def _generate(
        self, context: Context, sequences: list[list[int]], logits: list[np.ndarray], n_predict: int, next_tokens: NextTokens | None = None
    ) -> tuple[list[list[int]], list[list[float]], float, int]:
        """Greedy decoding of every sequence, one token each per step; records the top-2 logit gap."""
        generated: list[list[int]] = [[] for _ in sequences]
        gaps: list[list[float]] = [[] for _ in sequences]
        nonfinite = 0
        started = time.perf_counter()
        for step in range(n_predict):
            nonfinite += sum(1 for row in logits if not np.isfinite(row).all())
            for seq, row in enumerate(logits):
                top = np.argpartition(row, -2)[-2:]
                best, second = (top[1], top[0]) if row[top[1]] >= row[top[0]] else (top[0], top[1])
                generated[seq].append(int(best))
                gaps[seq].append(float(row[best] - row[second]))
            if step == n_predict - 1:
                break
            items = [(seq, len(tokens) + step, generated[seq][-1]) for seq, tokens in enumerate(sequences)]
            self._decode(context, items, [True] * len(items))
            logits = [self._logits(context, index).copy() for index in range(len(items))]
            if next_tokens is not None:
                for seq, position, _ in items:
                    next_tokens.add(seq, position, logits[seq])
        return generated, gaps, time.perf_counter() - started, nonfinite

    def complete(
        self,
        prompt: str,
        max_tokens: int,
        stop: list[str],
        n_ctx: int,
        n_threads: int,
        end: str | None = None,
        reuse: bool = False,
        prefix: str | None = None,
    ) -> dict[str, Any]:
        """Greedy completion until end of generation, a stop string (cut before it), `end` (a pattern, kept up to its
        match's end) or max_tokens; the text and how it ended: eog, stop, end or budget. With `reuse`, a `prefix` the
        prompt begins with is decoded on its own and kept for the next prompt that begins with it (`prompt_cache`):
        `reused_tokens` are the prefix's tokens when a slot held them already."""
        tokens = self.tokenize(prompt)[: n_ctx - max_tokens]
        shared = self._declared_prefix(tokens, prefix, max_tokens, n_ctx) if reuse else []
        context, seq, reused = self._prompt_start(shared, n_ctx, n_threads)
        reply = Reply(0, tokens, max_tokens, stop, re.compile(end) if end else None, seq=seq, reused=reused)
        fed = [(seq, pos, tokens[pos]) for pos in range(len(shared), len(tokens))]
        reply.logits = self._feed(context, fed, REFERENCE_BATCH, all_logits=False)[seq]
        while not advance(reply, self, _cut):
            self._decode(context, [reply.last()], [True])
            reply.logits = self._logits(context, 0).copy()
        if shared and self.slots is not None:
            self.slots.hold(seq, shared)
        return reply.result()

    def complete_many(
        self, requests: list[dict[str, Any]], n_ctx: int, n_threads: int, sequences: int, reuse: bool = False
    ) -> list[dict[str, Any]]:
        """`complete` for each request (`prompt`, `max_tokens`, `stop`, `end`, `prefix`), up to `sequences` replies
        extended together, a finished one making room for the next (`continuous_batch`)."""
        context = self.context(n_ctx, REFERENCE_BATCH, REFERENCE_BATCH, sequences + SLOTS, False)
        llama_cpp.llama_set_n_threads(context, n_threads, n_threads)
        if self.batch is None or self.batch.context is not context or self.batch.reuse != reuse:  # else its prefixes are kept
            self.batch = ContinuousBatch(self, context, n_ctx, REFERENCE_BATCH, sequences, reuse)
        return self.batch.run(requests, _cut)

    def _declared_prefix(self, tokens: list[int], prefix: str | None, max_tokens: int, n_ctx: int) -> list[int]:
        """The prompt's tokens its declared `prefix` shares with it (`shared_prefix.declared_prefix`)."""
        return tokens[: declared_prefix(tokens, self.tokenize(prefix), max_tokens, n_ctx)] if prefix else []

    def _prompt_start(self, shared: list[int], n_ctx: int, n_threads: int) -> tuple[Context, int, int]:
        """The context, sequence and reused token count a prompt starts from: a fresh one-sequence context without a
        shared prefix; else the prompt slots' context, the prefix's slot, its prefix decoded there unless it was held."""
        if not shared:
            return self.fresh_context(n_ctx, REFERENCE_BATCH, REFERENCE_BATCH, 1, False, n_threads), 0, 0
        context = self.context(SLOTS * stream_cells(n_ctx), REFERENCE_BATCH, REFERENCE_BATCH, SLOTS, False, unified=False)
        llama_cpp.llama_set_n_threads(context, n_threads, n_threads)
        if self.slots is None:
            self.slots = PromptSlots(context, self.model)
        choice = self.slots.place(shared)
        if choice.held:
            return context, choice.slot, len(shared)
        self._feed(context, [(choice.slot, pos, token) for pos, token in enumerate(shared)], REFERENCE_BATCH, all_logits=False)
        return context, choice.slot, 0

    def haystack_begin(self, n_ctx: int, n_threads: int) -> None:
        """An empty context of `n_ctx` tokens for one long text grown in sequence 0 (the context stability curve's
        one pass), with a second sequence where questions are asked and removed again."""
        self.haystack = (n_ctx, REFERENCE_BATCH, REFERENCE_BATCH, HAYSTACK_SEQUENCES, False, True)
        self.fresh_context(*self.haystack[:-1], n_threads)
        self.haystack_end = 0

    def _haystack(self) -> Context:
        if self.haystack is None or self.haystack not in self.contexts:
            raise RuntimeError("the haystack's context is gone (another request replaced it): haystack_begin first")
        return self.contexts[self.haystack]

    def haystack_grow(self, tokens: list[int]) -> int:
        """Append `tokens` to the haystack; its length after them."""
        context = self._haystack()
        self._feed(context, [(0, self.haystack_end + index, token) for index, token in enumerate(tokens)], REFERENCE_BATCH, False)
        self.haystack_end += len(tokens)
        return self.haystack_end

    def haystack_ask(self, question: list[int], answer: list[int]) -> dict[str, Any]:
        """The log-probability of each answer token after the haystack and `question`, and whether greedy picks it.

        The question goes into a copy of the haystack's sequence (llama.cpp's `llama_memory_seq_cp`: the cells are
        shared, not copied, in a unified cache), which is removed whole afterwards, so the haystack grows on as if it
        had never been asked: a cache that cannot drop a sequence's last cells (DeepSeek-V4's compressed one) can
        still drop a whole sequence."""
        context = self._haystack()
        memory = llama_cpp.llama_get_memory(context)
        llama_cpp.llama_memory_seq_cp(memory, 0, 1, -1, -1)
        try:
            return self._score(context, self.haystack_end, question, answer)
        finally:
            llama_cpp.llama_memory_seq_rm(memory, 1, -1, -1)

    def _score(self, context: Context, start: int, question: list[int], answer: list[int]) -> dict[str, Any]:
        """Decode `question` and the answer but its last token in sequence 1 from position `start`, scoring the answer."""
        sequence = question + answer[:-1]
        scored_from = len(question) - 1
        logprobs, greedy = [], []
        for begin in range(0, len(sequence), REFERENCE_BATCH):
            chunk = [(1, start + index, sequence[index]) for index in range(begin, min(begin + REFERENCE_BATCH, len(sequence)))]
            self._decode(context, chunk, [position - start >= scored_from for _, position, _ in chunk])
            for row, (_, position, _) in enumerate(chunk):
                if position - start >= scored_from:
                    logits = self._logits(context, row).astype(np.float64)
                    target = answer[position - start - scored_from]
                    top = logits.max()
                    logprobs.append(float(logits[target] - top - np.log(np.exp(logits - top).sum())))
                    greedy.append(int(logits.argmax()) == target)
        return {"logprobs": logprobs, "greedy_matches": greedy}

    def tokenizer_roundtrip(self, texts: list[str]) -> list[dict[str, Any]]:
        results = []
        for text in texts:
            tokens = self.tokenize(text, add_special=False)
            results.append({"text": text, "tokens": len(tokens), "roundtrip": self.detokenize(tokens)})
        return results

    def render_chat(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        """The conversation as llama.cpp's built-in templates render the model's template (no Jinja runs), and which form
        that is: {"template": False} without one, "text" None when llama.cpp does not recognize it."""
        template = llama_cpp.llama_model_chat_template(self.model, None)
        if not template:
            return {"template": False, "text": None, "form": None}
        text = apply_template(template, messages)
        form = next((name for name in builtin_templates() if text is not None and apply_template(name.encode(), messages) == text), None)
        return {"template": True, "text": text, "form": form}


def tokenized(vocab: Any, text: str, add_special: bool) -> list[int]:
    raw = text.encode("utf-8")
    capacity = len(raw) + 16
    tokens = (llama_cpp.llama_token * capacity)()
    count = llama_cpp.llama_tokenize(vocab, raw, len(raw), tokens, capacity, add_special, True)
    if count < 0:
        raise RuntimeError(f"tokenizing needs {-count} tokens")
    return list(tokens[:count])


def builtin_templates() -> list[str]:
    """The names of llama.cpp's built-in chat templates, in its own order."""
    count = llama_cpp.llama_chat_builtin_templates(None, 0)
    names = (ctypes.c_char_p * max(count, 1))()
    llama_cpp.llama_chat_builtin_templates(names, count)
    return [name.decode() for name in names[:count] if name]


def apply_template(template: bytes, messages: list[dict[str, str]]) -> str | None:
    """llama_chat_apply_template with the generation prompt; None when llama.cpp does not know the template."""
    chat = (llama_cpp.llama_chat_message * len(messages))(
        *[llama_cpp.llama_chat_message(m["role"].encode(), m["content"].encode()) for m in messages]
    )
    capacity = 2 * sum(len(m["content"]) + len(m["role"]) for m in messages) + 1024
    for _ in range(2):  # the rendered text can outgrow the first guess: llama.cpp says by how much
        buffer = ctypes.create_string_buffer(capacity)
        count = llama_cpp.llama_chat_apply_template(template, chat, len(messages), True, buffer, capacity)
        if count < 0:
            return None
        if count <= capacity:
            return buffer.raw[:count].decode("utf-8", "replace")
        capacity = count
    raise RuntimeError(f"llama.cpp asked for {capacity} bytes to render the chat and again for more")


def model_identity(model: Any) -> dict[str, Any]:
    """What llama.cpp calls a loaded (or dry-run) model: its description, parameter and layer counts."""
    description = ctypes.create_string_buffer(256)
    llama_cpp.llama_model_desc(model, description, len(description))
    return {
        "description": description.value.decode("utf-8", "replace"),
        "n_params": llama_cpp.llama_model_n_params(model),
        "n_layer": llama_cpp.llama_model_n_layer(model),
    }


def _cut(text: str, stop: list[str], end: re.Pattern[str] | None) -> tuple[str, str]:
    """The text so far and whether it is finished: cut before the first stop string, or kept up to the end pattern's match."""
    stops = [text.index(marker) for marker in stop if marker in text]
    if stops:
        return text[: min(stops)], "stop"
    match = end.search(text) if end is not None else None
    if match is not None:
        return text[: match.end()], "end"
    return text, "budget"


def serve(worker: ModelWorker, requests: Iterable[str], answers: TextIO) -> None:
    """Answer one JSON request per line until `shutdown` or end of input."""
    operations: dict[str, Callable[..., Any]] = {
        "load": worker.load,
        "plan_memory": worker.plan_memory,
        "describe": worker.describe,
        "stats": worker.stats,
        "evaluate": worker.evaluate,
        "tokenize": worker.tokenize,
        "planned_tokens": worker.planned_tokens,
        "prompt_timing": worker.prompt_timing,
        "complete": worker.complete,
        "complete_many": worker.complete_many,
        "haystack_begin": worker.haystack_begin,
        "haystack_grow": worker.haystack_grow,
        "haystack_ask": worker.haystack_ask,
        "tokenizer_roundtrip": worker.tokenizer_roundtrip,
        "render_chat": worker.render_chat,
    }
    tidying = threading.Thread()  # frees what an answer left while the client reads it; the next request waits for it
    for line in requests:
        request = json.loads(line)
        if request["op"] == "shutdown":
            break
        if tidying.ident is not None:
            tidying.join()
        try:
            answer = {"ok": True, "result": operations[request["op"]](**request.get("args", {}))}
        except Exception as error:
            answer = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
        tidying = threading.Thread(target=worker.tidy, daemon=True)
        tidying.start()


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    llama_cpp.llama_log_set(LOG.callback, ctypes.c_void_p(0))
    protocol.write(json.dumps({"ready": True}) + "\n")  # llama.cpp imported: it can start
    protocol.flush()
    serve(ModelWorker(), sys.stdin, protocol)
    sys.stderr.flush()
    os._exit(0)  # every answer is out: the system frees llama.cpp's memory at once (a tidying left unfinished too)


if __name__ == "__main__":
    main()
