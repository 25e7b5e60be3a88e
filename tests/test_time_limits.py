"""The suite's time limits are its quiet-machine limits times the machine's slowdown when each test starts."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pytest_timeout import _get_item_settings

from pytest_dfqs.runtime.host import busy_cores
from tests.machine_speed import SET_BY, THREADS_SET_BY, free_cores, scaled, slowdown

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(7)
def test_a_tests_own_limit_is_scaled_when_it_starts(request: pytest.FixtureRequest) -> None:
    assert _get_item_settings(request.node).timeout == pytest.approx(7 * slowdown())


def test_an_unmarked_test_gets_the_default_limit_scaled(request: pytest.FixtureRequest) -> None:
    assert _get_item_settings(request.node).timeout == pytest.approx(300 * slowdown())


def test_a_slower_machine_gets_longer_limits() -> None:
    """The two tests above, where the machine is 2.5 times slower than the quiet one: 17.5 s and 750 s limits."""
    environment = os.environ | {SET_BY: "2.5"}
    command = [sys.executable, "-m", "pytest", f"{__file__}::test_a_tests_own_limit_is_scaled_when_it_starts"]
    command += [f"{__file__}::test_an_unmarked_test_gets_the_default_limit_scaled", "-p", "no:randomly", "-p", "no:cacheprovider"]
    run = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=scaled(120))
    assert run.returncode == 0, run.stdout[-3000:]
    assert "llama.cpp on 2 of 2 threads and time limits x2.50 for this machine's free cores and speed now" in run.stdout
    assert "2 passed" in run.stdout


BUSY_LOOP = [sys.executable, "-c", "while True: pass"]


def test_a_core_held_by_other_work_leaves_llama_cpp_one_thread() -> None:
    """A busy loop another program started holds one of the 2 cores: the tests' llama.cpp runs take the core left free
    (on a machine busy already, still one: never fewer)."""
    started = subprocess.run(["sh", "-c", f"{shlex.join(BUSY_LOOP)} >/dev/null 2>&1 & echo $!"], capture_output=True, text=True)
    stranger = int(started.stdout)  # its shell has exited: the loop is not this process's child
    try:
        time.sleep(0.5)
        assert free_cores() == 1
    finally:
        os.kill(stranger, signal.SIGKILL)


def test_work_this_process_started_is_not_other_work() -> None:
    """A busy loop of this process's own (as llama.cpp's workers, rpc-servers and exiting pytest runs are) is not
    counted busy: the cores it takes are the suite's to give."""
    before = busy_cores()
    own = subprocess.Popen(BUSY_LOOP)
    try:
        time.sleep(0.5)
        assert busy_cores() < before + 0.5
    finally:
        own.kill()
        own.wait()


def test_the_header_says_the_threads_set_by_hand() -> None:
    environment = os.environ | {SET_BY: "1", THREADS_SET_BY: "1"}
    command = [sys.executable, "-m", "pytest", f"{__file__}::test_an_unmarked_test_gets_the_default_limit_scaled"]
    command += ["-p", "no:randomly", "-p", "no:cacheprovider"]
    run = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=scaled(120))
    assert run.returncode == 0, run.stdout[-3000:]
    assert "llama.cpp on 1 of 2 threads and time limits x1.00" in run.stdout
