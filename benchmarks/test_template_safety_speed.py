"""What the safety group costs per chat template, and what it finds: llama.cpp's 70 real templates and the hostile corpus.

The scan is reported against jinja2's own parse of the same template (the scan's floor: it walks that tree), the
sandboxed rendering against a bare isolated Python started the same way (the floor of any separate process).

Run with: pytest benchmarks/test_template_safety_speed.py -m benchmark -s
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks.measure import best_of
from pytest_dfqs.safety.template_code import parse, scan_template
from pytest_dfqs.safety.template_safety import assess_template
from tests.safety.hostile_templates import PAYLOADS
from tests.safety.templated import read_real_templates

pytestmark = pytest.mark.benchmark
TOKENS = {"bos_token": "<s>", "eos_token": "</s>"}


@pytest.fixture(scope="module")
def real_templates(pytestconfig: pytest.Config) -> dict[str, str]:
    return read_real_templates(Path(pytestconfig.cache.mkdir("llama-cpp-sdist")))


def _per_template(rounds: int, sources: list[str], action: Callable[[str], object]) -> float:
    """The best of `rounds` passes over `sources`, in seconds per template."""
    return best_of(rounds, lambda: [action(source) for source in sources]) / len(sources)


def test_scanning_a_template_beside_parsing_it(benchmark, real_templates: dict[str, str]) -> None:
    sources = list(real_templates.values())
    parsed = _per_template(3, sources, parse)
    scanned = benchmark.pedantic(lambda: _per_template(3, sources, scan_template), rounds=1, iterations=1)
    benchmark.extra_info.update({"templates": len(sources), "parse_ms": parsed * 1000, "scan_ms": scanned * 1000})
    scan_ms, parse_ms = scanned * 1000, parsed * 1000
    print(f"\n{len(sources)} real templates: scan {scan_ms:.1f} ms per template, parse {parse_ms:.1f} ms (x{scanned / parsed:.2f})")


def test_rendering_in_the_sandbox_beside_a_bare_process(benchmark, real_templates: dict[str, str]) -> None:
    sample = [real_templates[name] for name in sorted(real_templates)[::10]]
    bare = best_of(3, lambda: subprocess.run([sys.executable, "-I", "-c", "import jinja2.sandbox"], check=True))
    rendered = benchmark.pedantic(
        lambda: _per_template(1, sample, lambda source: assess_template("t", source, TOKENS)), rounds=1, iterations=1
    )
    benchmark.extra_info.update({"sample": len(sample), "bare_s": bare, "assess_s": rendered})
    print(f"\nassessing a template (scan + sandboxed renders): {rendered:.3f} s; a bare isolated Python importing jinja2: {bare:.3f} s")


def test_findings_by_family(benchmark, real_templates: dict[str, str]) -> None:
    """The figures of the closing note: real templates dangerous, hostile ones dangerous, findings by family, outcomes."""
    real = benchmark.pedantic(lambda: [assess_template("t", source, TOKENS) for source in real_templates.values()], rounds=1, iterations=1)
    hostile = [(payload, assess_template("t", payload.source, TOKENS)) for payload in PAYLOADS]
    families = Counter(finding.family for _, assessed in hostile for finding in assessed.code)
    outcomes = Counter(r.outcome for _, assessed in hostile for r in assessed.renderings)
    caught = Counter(payload.family for payload, assessed in hostile if assessed.dangerous)
    benchmark.extra_info.update({"families": dict(families), "outcomes": dict(outcomes), "caught": dict(caught)})
    print(
        f"\nreal: {sum(a.dangerous for a in real)} of {len(real)} dangerous; hostile: {sum(caught.values())} of {len(PAYLOADS)} dangerous"
    )
    print(f"hostile by payload family (dangerous): {dict(caught)}")
    print(f"scan findings by family: {dict(families)}")
    print(f"sandbox outcomes: {dict(outcomes)}")
    assert not any(a.dangerous for a in real) and sum(caught.values()) == len(PAYLOADS)
