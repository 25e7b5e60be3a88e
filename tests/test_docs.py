"""The documentation against the plugin: every option `pytest --help` shows is on the options page with its ini twin,
and every option or ini name the README and the docs pages mention exists."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.machine_speed import scaled

ROOT = Path(__file__).resolve().parent.parent
GROUP = "DFQS v1.0 model certification:"
OPTION = re.compile(r"--dfqs-[a-z0-9-]*[a-z0-9]")
INI = re.compile(r"\bdfqs_[a-z0-9_]*[a-z0-9]\b")
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def options_hook() -> ModuleType:
    """docs/hooks/options.py, the MkDocs hook that writes the options page's table."""
    spec = importlib.util.spec_from_file_location("options_hook", ROOT / "docs" / "hooks" / "options.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def shown(tmp_path_factory: pytest.TempPathFactory) -> tuple[set[str], set[str]]:
    """The options of pytest --help's DFQS group, and the dfqs ini names it lists."""
    folder = tmp_path_factory.mktemp("help")
    output = subprocess.run(
        [sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=scaled(120),
    ).stdout
    group = output.split(GROUP, 1)[1]
    group = group[: re.search(r"^\S.*:$", group, re.MULTILINE).start()]  # up to the next group's title
    options = {match[1] for line in group.splitlines() if (match := re.match(r"\s{2}(--dfqs-[a-z0-9-]+)", line))}
    ini_section = output.split("[pytest] configuration options", 1)[1]
    ini = {match[1] for line in ini_section.splitlines() if (match := re.match(r"\s{2}(dfqs_[a-z0-9_]+) \(", line))}
    return options, ini


def test_the_options_page_lists_every_option_and_ini_twin_pytest_shows(shown: tuple[set[str], set[str]]) -> None:
    options, ini = shown
    table = options_hook().options_table()
    listed = {match[1] for match in re.finditer(r"^\| `(--dfqs-[a-z0-9-]+)", table, re.MULTILINE)}
    twins = {match[1] for match in re.finditer(r"\| `(dfqs_[a-z0-9_]+)` \|", table)}
    assert len(options) >= 30 and listed == options
    assert len(ini) >= 20 and twins == ini


def written_names() -> set[str]:
    """The `dfqs_` names the plugin writes besides its ini names: JUnit properties, Allure labels."""
    return {name for path in (ROOT / "pytest_dfqs").rglob("*.py") for name in re.findall(r"[\"'](dfqs_[a-z0-9_]+)[\"']", path.read_text())}


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_every_option_a_page_names_exists(shown: tuple[set[str], set[str]], page: Path) -> None:
    options, ini = shown
    text = page.read_text()
    unknown = sorted(set(OPTION.findall(text)) - options) + sorted(set(INI.findall(text)) - ini - written_names())
    assert not unknown, f"{page.name} names options the plugin does not have: {unknown}"


def test_the_readme_and_the_docs_link_only_to_pages_that_exist() -> None:
    """MkDocs checks the docs pages' links (strict, in .ci/run); the README's are checked here."""
    targets = re.findall(r"\]\((docs/[^)#]+)(?:#[^)]*)?\)", (ROOT / "README.md").read_text())
    assert targets and all((ROOT / target).is_file() for target in targets), targets
