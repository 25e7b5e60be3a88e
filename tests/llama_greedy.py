"""What llama.cpp makes of a model file: greedy tokens and the logits behind them, in a process of its own.

Given the first shard of a split model, llama.cpp finds the other shards by
name and loads them all, so the same run judges a split set, a merged file and
the original: equal tokens and bit-equal logits mean llama.cpp read the same
model from each. Run as a script, it prints one JSON line for the path it is given.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PROMPT = b"the theory of"
STEPS = 8


@dataclass(frozen=True)
class GreedyRun:
    tokens: list[int]  # the greedy continuation
    logits_sha256: str  # of every step's float32 logits, in order
    first_logits: list[float]  # a few values of the first step, to show a difference when there is one
    n_params: int


def greedy_run(path: Path) -> GreedyRun:
    """llama.cpp's greedy continuation of PROMPT from `path`; fails with llama.cpp's log when it cannot load the file."""
    from tests.machine_speed import scaled  # here, not at the top: run as a script, this file has no `tests` package

    result = subprocess.run([sys.executable, __file__, str(path)], capture_output=True, text=True, timeout=scaled(300))
    assert result.returncode == 0, result.stderr[-3000:]
    return GreedyRun(**json.loads(result.stdout.splitlines()[-1]))


def _run(path: str) -> dict[str, object]:
    import numpy as np
    from llama_cpp import Llama

    llm = Llama(model_path=path, n_ctx=256, n_threads=1, n_threads_batch=1, n_gpu_layers=0, logits_all=True, verbose=False)
    llm.eval(llm.tokenize(PROMPT))
    tokens, digest, first = [], hashlib.sha256(), []
    for _ in range(STEPS):
        logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
        digest.update(logits.tobytes())
        first = first or [float(value) for value in logits[:4]]
        token = int(np.argmax(logits))
        tokens.append(token)
        llm.eval([token])
    return {"tokens": tokens, "logits_sha256": digest.hexdigest(), "first_logits": first, "n_params": llm._model.n_params()}


if __name__ == "__main__":
    print(json.dumps(_run(sys.argv[1])))
