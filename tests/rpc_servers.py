"""llama.cpp RPC servers on the loopback for the tests: started from the installed llama-cpp-python, stopped after.

Each is `python -m pytest_dfqs.runtime.rpc_server` on a free port of 127.0.0.1, waited for until the port accepts a
connection (its HELLO is the tests' business), and ended by SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RpcServer:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_rpc_server(folder: Path, threads: int = 1) -> RpcServer:
    """An rpc-server on a free loopback port, its output in `folder`; raises if it does not listen in time."""
    port = free_port()
    log = folder / f"rpc-server-{port}.log"
    command = [sys.executable, "-m", "pytest_dfqs.runtime.rpc_server", "--port", str(port), "--threads", str(threads)]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    server = RpcServer(port, process, log)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"rpc-server exited {process.returncode}: {log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"rpc-server did not listen on {port} within {START_TIMEOUT_S} s: {log.read_text(errors='replace')[-2000:]}")
