"""llama.cpp as the judge of GGUF files: its own reader and its own loader, in a process of their own.

Run as a script, it reads one path per line and answers one JSON line per path:
`reader` (gguf_init_from_file from libggml-base, data section read in full)
and `loader` (llama_model_load_from_file, CPU, then a context as the runtime
tier sets one up, which builds the model's graph: a file is "loaded" when
llama.cpp can run it, not merely read its weights). When llama.cpp aborts
on a file the process dies; `LlamaJudge` records that file's loader verdict as
"aborted" with the assertion line and starts a new judge for the next file.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

CONTEXT = 512  # the context of the agreement runs (--dfqs-ctx 512)
ASSERTION = re.compile(r"GGML_ASSERT\(.*\) failed|error loading model: .*")


@dataclass(frozen=True)
class Judgement:
    reader: bool  # gguf_init_from_file accepted the file
    loader: str  # "loaded", "refused" or "aborted"
    words: str  # llama.cpp's complaint, when it had one

    @property
    def runs(self) -> bool:
        return self.loader == "loaded"


class LlamaJudge:
    """A judge process fed one file at a time; restarted after a file that aborts it."""

    def __init__(self) -> None:
        self._log = tempfile.TemporaryFile()
        self._process: subprocess.Popen[str] | None = None

    def judge(self, path: Path) -> Judgement:
        process = self._running()
        assert process.stdin is not None and process.stdout is not None
        self._log.seek(0)
        self._log.truncate()
        process.stdin.write(f"{path}\n")
        process.stdin.flush()
        line = process.stdout.readline()
        if line:
            answer = json.loads(line)
            return Judgement(answer["reader"], "loaded" if answer["loaded"] else "refused", self._words())
        process.wait()
        self._process = None
        return Judgement(reader=self._reader_passed(), loader="aborted", words=self._words())

    def _running(self) -> subprocess.Popen[str]:
        if self._process is None:
            self._process = subprocess.Popen(
                [sys.executable, __file__],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log,
                text=True,
                env={**os.environ, "GGML_NO_BACKTRACE": "1"},
            )
        return self._process

    def _log_text(self) -> str:
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def _words(self) -> str:
        found = ASSERTION.findall(self._log_text())
        return found[-1] if found else ""

    def _reader_passed(self) -> bool:
        return "dfqs-judge: reader ok" in self._log_text()

    def close(self) -> None:
        if self._process is not None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            self._process.wait()
        self._log.close()


class _GgufInitParams(ctypes.Structure):
    _fields_ = [("no_alloc", ctypes.c_bool), ("ctx", ctypes.POINTER(ctypes.c_void_p))]


def _serve() -> None:
    import llama_cpp

    from pytest_dfqs.runtime.client import BATCH, PLANNED_SEQUENCES
    from pytest_dfqs.runtime.worker import context_params

    base = ctypes.CDLL(str(next((Path(llama_cpp.__file__).parent / "lib").glob("libggml-base.so*"))))
    base.gguf_init_from_file.restype = ctypes.c_void_p
    base.gguf_init_from_file.argtypes = [ctypes.c_char_p, _GgufInitParams]
    base.gguf_free.argtypes = [ctypes.c_void_p]
    base.ggml_free.argtypes = [ctypes.c_void_p]
    log_bytes = llama_cpp.llama_log_callback(lambda level, text, user_data: os.write(2, text))  # not UTF-8 when names are not
    llama_cpp.llama_log_set(log_bytes, ctypes.c_void_p(0))
    llama_cpp.llama_backend_init()
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    for line in sys.stdin:
        path = line.rstrip("\n").encode()
        data = ctypes.c_void_p()
        gguf = base.gguf_init_from_file(path, _GgufInitParams(False, ctypes.pointer(data)))
        if gguf:
            base.gguf_free(gguf)
            base.ggml_free(data)
            print("dfqs-judge: reader ok", file=sys.stderr, flush=True)
        model = llama_cpp.llama_model_load_from_file(path, llama_cpp.llama_model_default_params())
        context = llama_cpp.llama_init_from_model(model, context_params(CONTEXT, BATCH, BATCH, PLANNED_SEQUENCES)) if model else None
        if context:
            llama_cpp.llama_free(context)
        if model:
            llama_cpp.llama_model_free(model)
        answers.write(json.dumps({"reader": bool(gguf), "loaded": bool(context)}) + "\n")
        answers.flush()


if __name__ == "__main__":
    _serve()
