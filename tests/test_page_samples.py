"""The pages' key samples are what their commands print, read from a pseudo-terminal 120 columns wide as a person sees
them (tests/page_samples.py masks timings, paths and this machine's figures): the README's demo summary and the
outputs page's whole session (the first command: the plugin alone, llama-cpp-python out of sight), the outputs page's
runtime tier, the tiers page's refusal by llama.cpp and the CI gate page's work plan."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import TerminalRun
from tests.page_samples import assert_printed, page_block
from tests.terminal_run import pytest_in_a_terminal
from tests.without_llama_cpp import hiding_llama_cpp


def printed(folder: Path, *args: str, hide_llama_cpp: bool = False) -> list[str]:
    """What `pytest ARGS`, run in `folder` (made afresh), prints on a terminal 120 columns wide."""
    env = {**os.environ, "PYTHONPATH": hiding_llama_cpp(folder.parent / "hidden")} if hide_llama_cpp else None
    folder.mkdir()
    status, lines = pytest_in_a_terminal(list(args), folder, 120, env)
    assert status in (0, 1), lines[-40:]
    return lines


@pytest.fixture(scope="module")
def first_command(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The README's first command in a folder of its own, without llama-cpp-python (a plain `pip install .`)."""
    return printed(tmp_path_factory.mktemp("readme") / "first-command", "--dfqs-model=demo", hide_llama_cpp=True)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("page", "after"), [("README.md", "The demo's summary"), ("docs/outputs.md", "A real run on the demo model")])
def test_the_first_commands_samples_are_what_it_prints(first_command: list[str], page: str, after: str) -> None:
    sample = page_block(page, after)
    assert len(sample) > 20
    assert_printed(sample, first_command)


@pytest.mark.timeout(300)
def test_the_runtime_sample_is_what_the_runtime_tier_prints(demo_runtime_tier: TerminalRun) -> None:
    """The demo's runtime tier of the session (tests/conftest.py): most of its time is DFQS-3.7's 65,537-token fill; on
    the tests' llama.cpp threads (the page's run took 2)."""
    status, lines = demo_runtime_tier.status, demo_runtime_tier.lines
    assert status in (0, 1), lines[-40:]
    sample = page_block("docs/outputs.md", "At tier runtime")
    assert_printed(sample, lines)


@pytest.mark.timeout(120)
def test_the_tiers_pages_refusal_samples_are_what_the_static_tier_prints(
    smollm2_without_a_norm: Path, smollm2: Path, tmp_path: Path
) -> None:
    refused = printed(tmp_path / "refused", f"--dfqs-model={smollm2_without_a_norm}")
    assert_printed(page_block("docs/tiers.md", "A copy of SmolLM2 with"), refused)
    published = printed(tmp_path / "published", f"--dfqs-model={smollm2}")
    assert_printed(page_block("docs/tiers.md", "and the file as published"), published)
    judged_by_rules = printed(tmp_path / "rules", f"--dfqs-model={smollm2_without_a_norm}", hide_llama_cpp=True)
    assert_printed(page_block("docs/tiers.md", "the header says so in one line"), judged_by_rules)


@pytest.mark.timeout(120)
def test_the_ci_gates_plan_sample_is_what_the_eval_tier_plans(tmp_path: Path) -> None:
    lines = printed(tmp_path / "plan", "--dfqs-model=demo", "--dfqs-tier=eval", "--dfqs-eval-budget=quick", "--collect-only")
    assert_printed(page_block("docs/ci-gate.md", "work plan before the first load"), lines)
