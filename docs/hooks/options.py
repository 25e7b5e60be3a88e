"""MkDocs hook: the options page's table, generated from the plugin's own option definitions (`settings.add_options`),
so the page lists exactly the options `pytest --help` shows, with their ini twins, defaults and help texts."""

from __future__ import annotations

from typing import Any

from pytest_dfqs.settings import add_options

MARKER = "<!-- options table -->"


class _Recorded:
    """What `add_options` declares, recorded instead of given to pytest's parser."""

    def __init__(self) -> None:
        self.options: list[tuple[tuple[str, ...], dict[str, Any]]] = []
        self.ini: dict[str, tuple[str, Any]] = {}

    def getgroup(self, name: str, description: str = "") -> _Recorded:
        return self

    def addoption(self, *names: str, **attrs: Any) -> None:
        self.options.append((names, attrs))

    def addini(self, name: str, help: str, type: str | None = None, default: Any = None) -> None:  # noqa: A002 - pytest's names
        self.ini[name] = (help, default)


def options_table() -> str:
    """One row per option: the option with its value, its ini twin, its default, what it does."""
    recorded = _Recorded()
    add_options(recorded)  # type: ignore[arg-type]
    rows = ["| option | ini | default | what it does |", "|---|---|---|---|"]
    for names, attrs in recorded.options:
        dest = attrs["dest"]
        flag = names[0] if attrs.get("action") in ("store_true", "append") and "metavar" not in attrs else f"{names[0]}={attrs['metavar']}"
        twin = f"`{dest}`" if dest in recorded.ini else ""
        default = recorded.ini[dest][1] if dest in recorded.ini else attrs.get("default")
        rows.append(f"| `{_cell(flag)}` | {twin} | {_default(default)} | {_cell(attrs['help'])} |")
    return "\n".join(rows)


def _default(value: Any) -> str:
    if value in (None, "", [], False):
        return ""
    return f"`{_cell(str(value))}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """MkDocs' hook: the table in place of the marker on the options page."""
    return markdown.replace(MARKER, options_table()) if page.file.src_uri == "options.md" else markdown
