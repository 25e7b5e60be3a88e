"""The memory preflight against what llama.cpp really takes, on every runtime fixture and several contexts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_dfqs.runtime.client import ModelRuntime, RuntimeOptions
from pytest_dfqs.runtime.preflight import COMPUTE_BUFFER, MIB, logged_bytes
from tests.machine_speed import llama_threads, scaled

CONTEXTS = (512, 2048, 8192)
AGREEMENT = 1.15  # the plan may exceed what llama.cpp takes by 15%, never fall short of it
FIXTURES = ("runtime_moe_model", "moe_model", "dense_model", "deepseek4_model", "smollm2")


def measured_bytes(path: Path, n_ctx: int, threads: int) -> int:
    """llama.cpp's real heap and mapped weights for a context of `n_ctx` on `threads` threads, worst-case requests
    included (tests.llama_memory)."""
    command = [sys.executable, "-m", "tests.llama_memory", str(path), str(n_ctx), str(threads)]
    run = subprocess.run(command, capture_output=True, text=True, check=True, timeout=scaled(300))
    return int(json.loads(run.stdout.strip().splitlines()[-1])["total_bytes"])


@pytest.mark.parametrize("fixture", FIXTURES)
def test_the_plan_covers_what_llama_cpp_takes_within_15_percent(fixture: str, request: pytest.FixtureRequest) -> None:
    path: Path = request.getfixturevalue(fixture)
    threads = llama_threads()
    runtime = ModelRuntime(path, RuntimeOptions(threads=threads, ctx=CONTEXTS[0]))
    try:
        ratios = {n_ctx: runtime.plan(n_ctx).total / measured_bytes(path, n_ctx, threads) for n_ctx in CONTEXTS}
    finally:
        runtime.close()
    assert (runtime.workers_started, runtime.loads_requested) == (1, 0)  # dry runs: the plan allocated nothing
    print(f"{path.name}: plan / llama.cpp's allocation = " + ", ".join(f"{ratio:.3f} at {n:,}" for n, ratio in ratios.items()))
    assert all(1.0 <= ratio <= AGREEMENT for ratio in ratios.values()), ratios


def test_sizes_are_read_at_their_printed_upper_bound() -> None:
    lines = ["sched_reserve:        CPU compute buffer size =     6.01 MiB", "llama_context:        CPU  output buffer size =     0.19 MiB"]
    assert logged_bytes(lines, COMPUTE_BUFFER) == round(6.015 * MIB)
