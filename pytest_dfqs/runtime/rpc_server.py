"""llama.cpp's RPC server, started from the installed llama-cpp-python's own libraries.

llama-cpp-python's wheel does not build llama.cpp's `rpc-server` program, but an RPC build of it
(`CMAKE_ARGS="-DGGML_RPC=on"`, see the README) ships `libggml-rpc.so`, which exports the server itself:
`ggml_backend_rpc_start_server(endpoint, cache_dir, n_threads, n_devices, devices)`. This module calls it with this
machine's CPU device, so client and server come from the same llama.cpp, as the protocol's handshake requires:

    python -m pytest_dfqs.runtime.rpc_server --host 127.0.0.1 --port 50052 --threads 4

It serves until it is stopped. RPC has no authentication: llama.cpp says never to expose it on an open network; a
host other than the loopback gets the same warning llama.cpp's rpc-server prints.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
from pathlib import Path

from .rpc import RPC_LIBRARY, is_loopback, llama_cpp_libraries

CPU_DEVICE = 0  # GGML_BACKEND_DEVICE_TYPE_CPU
DEFAULT_PORT = 50052  # llama.cpp's rpc-server's


def libraries() -> Path:
    """The folder of the installed llama-cpp-python's shared libraries."""
    folder = llama_cpp_libraries()
    if folder is None:
        raise SystemExit("rpc_server: llama-cpp-python is not installed (pip install 'pytest-dfqs[runtime]', built with RPC)")
    return folder


def rpc_library(folder: Path) -> ctypes.CDLL:
    path = folder / RPC_LIBRARY
    if not path.is_file():
        raise SystemExit(
            f"rpc_server: this llama-cpp-python has no RPC backend ({path.name} is not in {folder}):"
            ' reinstall it built with CMAKE_ARGS="-DGGML_RPC=on" (README, "Certifying across machines")'
        )
    return ctypes.CDLL(str(path))


def serve(host: str, port: int, threads: int, cache: str | None) -> None:
    folder = libraries()
    ggml = ctypes.CDLL(str(folder / "libggml.so"))
    rpc = rpc_library(folder)
    ggml.ggml_backend_load_all()
    ggml.ggml_backend_dev_by_type.restype = ctypes.c_void_p
    ggml.ggml_backend_dev_by_type.argtypes = [ctypes.c_int]
    device = ggml.ggml_backend_dev_by_type(CPU_DEVICE)
    if not device:
        raise SystemExit("rpc_server: ggml found no CPU device")
    devices = (ctypes.c_void_p * 1)(device)
    rpc.ggml_backend_rpc_start_server.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_void_p]
    rpc.ggml_backend_rpc_start_server.restype = None
    if not is_loopback(host):
        print(
            f"WARNING: host {host!r} is not the loopback: never expose the RPC server to an open network (no authentication)",
            file=sys.stderr,
        )
    rpc.ggml_backend_rpc_start_server(f"{host}:{port}".encode(), cache.encode() if cache else None, threads, 1, devices)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pytest_dfqs.runtime.rpc_server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads for the graphs it computes")
    parser.add_argument("--cache", default=None, help="a folder where the server keeps tensors it was sent, by hash")
    args = parser.parse_args(argv)
    serve(args.host, args.port, args.threads, args.cache)


if __name__ == "__main__":
    main()
