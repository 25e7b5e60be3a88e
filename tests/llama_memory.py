"""What llama.cpp really takes for a model and a context: the judge of the memory preflight.

Run as `python -m tests.llama_memory MODEL N_CTX THREADS` in a process of its own: the
worker's own code loads the model for real, grows the context stability
curve's haystack by one whole batch in a context of n_ctx and asks one
question in its copy, decodes one whole batch with the logits of every
token (what a traced fill of routing under pressure asks for), then traces the routing of three sequences in one
batch (as DFQS-3.3 does): the heaviest requests of a run. It prints, as JSON,
the most C heap in use above the start after either (glibc's mallinfo2: every
buffer, cache and piece of metadata llama.cpp allocated) and the weights
llama.cpp mapped from the file (its log's `*_Mapped model buffer size`
lines; mapped pages are not heap).
"""

from __future__ import annotations

import ctypes
import json
import re
import sys
from pathlib import Path
from typing import Any

import llama_cpp

from pytest_dfqs.runtime.worker import LOG, REFERENCE_BATCH, ModelWorker, heap_in_use

MAPPED_BUFFER = re.compile(r"_Mapped model buffer size = +(?P<mib>[\d.]+) MiB")
SEQUENCES, SEQUENCE_TOKENS = 3, 100
QUESTION_TOKENS = 24  # the haystack's question and answer, of the batch's tokens
FIRST_TOKENS = 50  # decoded tokens cycle through ids 1..50, present in every fixture's vocabulary


def measure(path: Path, n_ctx: int, threads: int) -> dict[str, Any]:
    llama_cpp.llama_log_set(LOG.callback, ctypes.c_void_p(0))
    worker = ModelWorker()
    mark, before = len(LOG.kept_lines), heap_in_use()
    worker.load(str(path))
    n_vocab = llama_cpp.llama_vocab_n_tokens(worker.vocab)
    tokens = [1 + index % min(FIRST_TOKENS, n_vocab - 1) for index in range(min(REFERENCE_BATCH, n_ctx) + 1)]
    worker.haystack_begin(n_ctx, n_threads=threads)
    worker.haystack_grow(tokens[:-QUESTION_TOKENS])
    worker.haystack_ask(tokens[-QUESTION_TOKENS:-2], tokens[-2:])
    batch = {"n_ctx": n_ctx, "n_threads": threads, "n_batch": REFERENCE_BATCH, "n_ubatch": REFERENCE_BATCH, "trace": True}
    worker.evaluate([], n_predict=1, token_prompts=[tokens[:-1]], **batch)
    heap = heap_in_use() - before
    sequences = [tokens[start : start + SEQUENCE_TOKENS] for start in range(0, SEQUENCES * SEQUENCE_TOKENS, SEQUENCE_TOKENS)]
    worker.evaluate([], n_predict=2, token_prompts=sequences, **batch)
    heap = max(heap, heap_in_use() - before)
    mapped = sum(float(m["mib"]) * (1 << 20) for line in LOG.since(mark) if (m := MAPPED_BUFFER.search(line)))
    return {"heap_bytes": heap, "mapped_bytes": int(mapped), "total_bytes": heap + int(mapped)}


if __name__ == "__main__":
    print(json.dumps(measure(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))), file=sys.__stdout__)
