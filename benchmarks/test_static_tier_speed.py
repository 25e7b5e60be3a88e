"""Speed and memory of the static tier, as ratios against reference runs in the same process.

Run with: pytest benchmarks/ -m benchmark
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from gguf import GGUFReader

from benchmarks.measure import best_of
from pytest_dfqs.modelfile.header import read_header
from pytest_dfqs.modelfile.integrity import hash_stream
from tests.deepseek_sized import REFERENCE_BYTES, deepseek_sized_header, write_sparse

pytestmark = pytest.mark.benchmark
GIB = 1 << 30
TENSORS = 1_328  # DeepSeek-V4-Flash's: 43 blocks of 24, 41 of them compressed (+4), 21 of those indexed (+6), 6 outside
# Measured for pytest and its llama.cpp worker together on the DeepSeek-V4-Flash-sized file: 169-170 MB at the sampled
# peak (the worker alone 130 MB, reached in llama.cpp's dry run; pytest ~40 MB, numpy not imported); rules only 55 MB.
PEAK_RSS_BOUND_MB = 300
ROUNDS = 5

# On PYTHONPATH, this makes importlib.util.find_spec("llama_cpp") None, exactly as when llama-cpp-python is not installed.
HIDE_LLAMA_CPP = 'import sys\n\nsys.modules["llama_cpp"] = None\n'

# Like benchmarks.measure.MEASURE, and it follows the command's process tree too (pytest and its llama.cpp worker):
# every SAMPLE_S it sums the resident sets (shared library pages counted in each) of the command and of the
# processes started after it whose parent is in the tree. It prints wall seconds, CPU seconds of the command and
# the children it waited for, the largest single process's peak RSS (ru_maxrss: the command's, or a waited-for
# child's if larger) and the sampled peak of the sum, in kB.
MEASURE_TREE = """
import os, subprocess, sys, threading, time
SAMPLE_S, PAGE = 0.02, os.sysconf("SC_PAGE_SIZE")
def field(pid, name, index):
    try:
        with open(f"/proc/{pid}/{name}") as handle:
            return int(handle.read().rpartition(")")[2].split()[index])
    except (OSError, ValueError, IndexError):
        return None
def watch(root, peak, done):
    tree = {root}
    while not done.is_set():
        for name in os.listdir("/proc"):
            if name.isdigit() and int(name) > root and int(name) not in tree and field(name, "stat", 1) in tree:
                tree.add(int(name))
        peak[0] = max(peak[0], sum((field(pid, "statm", 1) or 0) * PAGE for pid in tree) // 1024)
        done.wait(SAMPLE_S)
started = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
peak, done = [0], threading.Event()
watcher = threading.Thread(target=watch, args=(child.pid, peak, done), daemon=True)
watcher.start()
output = child.stdout.read(); usage = os.wait4(child.pid, 0)[2]; wall = time.perf_counter() - started
done.set(); watcher.join()
print(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, peak[0]); sys.stdout.flush(); os.write(1, output)
"""


@pytest.fixture(scope="module")
def deepseek_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sparse(tmp_path_factory.mktemp("dsv4") / "DeepSeek-V4-Flash-sized.gguf", deepseek_sized_header())


def test_header_parse_against_gguf_reader(benchmark, deepseek_file: Path) -> None:
    header = benchmark.pedantic(read_header, args=(deepseek_file,), rounds=20, iterations=1, warmup_rounds=2)
    assert len(header.tensors) == TENSORS and header.metadata["tokenizer.ggml.tokens"].count == 129_280
    reference = best_of(1, lambda: GGUFReader(deepseek_file))
    ours = benchmark.stats.stats.median
    benchmark.extra_info.update({"gguf_reader_s": reference, "read_header_median_s": ours, "speedup": reference / ours})
    print(f"\nread_header median {ours * 1000:.1f} ms, GGUFReader {reference:.2f} s, speed-up {reference / ours:.0f}x")
    assert ours < 0.050
    assert reference / ours >= 50


def test_parse_time_does_not_grow_with_file_size(benchmark, deepseek_file: Path, tmp_path: Path) -> None:
    small = write_sparse(tmp_path / "same-header-1gib.gguf", deepseek_sized_header(), size=GIB)
    benchmark.pedantic(read_header, args=(deepseek_file,), rounds=15, iterations=1, warmup_rounds=2)
    large_time = benchmark.stats.stats.median
    small_time = sorted(best_of(1, lambda: read_header(small)) for _ in range(15))[7]
    ratio = large_time / small_time
    benchmark.extra_info.update({"file_61_6gb_s": large_time, "file_1gib_s": small_time, "ratio": ratio})
    print(f"\n61.6 GB file {large_time * 1000:.1f} ms, 1 GiB file {small_time * 1000:.1f} ms, ratio {ratio:.2f}")
    assert 0.7 < ratio < 1.4


class TreeRun:
    """One measured run of a command: wall and CPU seconds, the largest process's peak and the whole tree's sampled peak (MB)."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        result = subprocess.run([sys.executable, "-c", MEASURE_TREE, *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
        first, _, self.output = result.stdout.partition("\n")
        wall, cpu, process_kb, tree_kb = first.split()
        self.wall, self.cpu, self.process_mb, self.tree_mb = float(wall), float(cpu), int(process_kb) // 1024, int(tree_kb) // 1024

    def clause_line(self, clause: str) -> str:
        return next((line for line in self.output.splitlines() if line.startswith(f"{clause} ")), "")


def cached_bytecode(folder: Path) -> dict[str, str]:
    """An environment where Python caches bytecode, in `folder`, whatever PYTHONDONTWRITEBYTECODE said.

    An installed plugin starts from cached bytecode. With PYTHONDONTWRITEBYTECODE=1, as some sandboxes set it,
    the plugin's own modules (an editable install has no .pyc) and pytest's rewrite of them would be compiled
    from source on every run: about 0.15 s more start-up in each run measured here.
    """
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": str(folder)}


def without_llama_cpp(env: dict[str, str], folder: Path) -> dict[str, str]:
    """`env` for a run that finds no llama-cpp-python: a sitecustomize on PYTHONPATH hides it."""
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(HIDE_LLAMA_CPP)
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(folder), env.get("PYTHONPATH")]))}


def test_whole_static_tier_on_a_sparse_61_6_gb_file(benchmark, deepseek_file: Path, tmp_path: Path) -> None:
    """The static tier with llama.cpp judging (its worker's dry run), against the rules alone.

    Each round with llama.cpp, the one pytest-benchmark times, follows a rules-only run (its setup): both meet
    the same machine load. A warm-up round of each fills the bytecode cache. The figures are medians of the rounds.
    """
    assert deepseek_file.stat().st_size == REFERENCE_BYTES
    certify = [sys.executable, "-m", "pytest", f"--dfqs-model={deepseek_file}", "-p", "no:cacheprovider", "-q"]
    env = cached_bytecode(tmp_path / "pycache")
    rules_env = without_llama_cpp(env, tmp_path / "without-llama-cpp")
    runs: dict[str, list[TreeRun]] = {"judged": [], "rules": []}

    def judged_run() -> None:
        runs["judged"].append(TreeRun(certify, tmp_path, env))

    def rules_run() -> None:
        runs["rules"].append(TreeRun(certify, tmp_path, rules_env))

    benchmark.pedantic(judged_run, setup=rules_run, rounds=ROUNDS, warmup_rounds=1)
    judged, rules = runs["judged"][-ROUNDS:], runs["rules"][-ROUNDS:]  # not the warm-up's, which compiled the bytecode
    base = TreeRun([sys.executable, "-m", "pytest", "--version"], tmp_path, env)
    for run in judged:
        assert "DFQS-3.1   SHALL   MET" in run.output and "llama.cpp accepts it" in run.clause_line("DFQS-3.1"), run.output
    for run in rules:
        line = run.clause_line("DFQS-3.1")  # the rules decide: "the rules accept it, no llama.cpp here"
        assert "DFQS-3.1   SHALL   MET" in line and "rules" in line and "llama.cpp accepts it" not in line, run.output
    wall, rules_wall = statistics.median(r.wall for r in judged), statistics.median(r.wall for r in rules)
    cpu, rules_cpu = statistics.median(r.cpu for r in judged), statistics.median(r.cpu for r in rules)
    tree, process, rules_tree = max(r.tree_mb for r in judged), max(r.process_mb for r in judged), max(r.tree_mb for r in rules)
    benchmark.extra_info.update(
        {
            "wall_s": wall,
            "rules_only_wall_s": rules_wall,
            "ratio_llama_cpp_to_rules_only": wall / rules_wall,
            "cpu_s": cpu,
            "rules_only_cpu_s": rules_cpu,
            "peak_rss_mb": tree,
            "peak_rss_largest_process_mb": process,
            "rules_only_peak_rss_mb": rules_tree,
            "wall_s_rounds": [r.wall for r in judged],
            "rules_only_wall_s_rounds": [r.wall for r in rules],
            "pytest_version_wall_s": base.wall,
            "pytest_version_rss_mb": base.process_mb,
        }
    )
    print(
        f"\nstatic tier, llama.cpp judging: {wall:.2f} s ({cpu:.2f} s CPU), peak RSS {tree} MB for pytest and its worker"
        f" together ({process} MB the largest process); rules only: {rules_wall:.2f} s ({rules_cpu:.2f} s CPU), {rules_tree} MB;"
        f" ratio {wall / rules_wall:.2f}\nrounds: llama.cpp {', '.join(f'{r.wall:.2f}' for r in judged)} s;"
        f" rules only {', '.join(f'{r.wall:.2f}' for r in rules)} s; bare `pytest --version` {base.wall:.2f} s, {base.process_mb} MB"
    )
    assert tree < PEAK_RSS_BOUND_MB
    assert wall < 2.0


def test_sha256_throughput_against_openssl(benchmark, tmp_path: Path) -> None:
    blob = tmp_path / "one-gib.bin"
    with open(blob, "wb") as handle:
        chunk = os.urandom(64 << 20)
        for _ in range(16):
            handle.write(chunk)
    subprocess.run(["cat", str(blob)], stdout=subprocess.DEVNULL, check=True)  # into the page cache
    openssl = best_of(3, lambda: subprocess.run(["openssl", "dgst", "-sha256", str(blob)], capture_output=True, check=True))
    digest = benchmark.pedantic(hash_stream, args=(blob, GIB), rounds=3, iterations=1)
    ours = benchmark.stats.stats.min
    expected = subprocess.run(["openssl", "dgst", "-sha256", "-r", str(blob)], capture_output=True, text=True).stdout.split()[0]
    ratio = openssl / ours
    benchmark.extra_info.update({"openssl_s": openssl, "hashlib_s": ours, "throughput_ratio": ratio, "gib_per_s": 1 / ours})
    print(f"\nhashlib {1 / ours:.2f} GiB/s, openssl {1 / openssl:.2f} GiB/s, ratio {ratio:.2f}")
    assert digest.sha256 == expected
    assert ratio >= 0.9
