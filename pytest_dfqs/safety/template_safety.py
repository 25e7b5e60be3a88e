"""What each chat template of a GGUF header does: its code read, its renderings in the sandbox, whether it is dangerous.

Every Jinja-bearing key counts: `tokenizer.chat_template` and the named
variants `tokenizer.chat_template.<name>` (a tool-use or RAG template). A
template is dangerous when its code reaches for Python objects
(`template_code`) or when the sandbox or its limits stop its rendering
(`template_render`); a template that refuses the conversation, fails on it, or
changes a list in place (which the immutable sandbox refuses) is a finding,
not a danger.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_dfqs.modelfile.header import ArrayValue, GGUFHeader, HeaderError, array_strings

from .template_render import RENDERED, STANDARD_NAME, WITHOUT_SYSTEM_NAME, Rendering, conversations, render_template

if TYPE_CHECKING:
    from .template_code import CodeFinding

TEMPLATE_KEY = "tokenizer.chat_template"
TOKEN_KEYS = {"bos_token": "tokenizer.ggml.bos_token_id", "eos_token": "tokenizer.ggml.eos_token_id"}


@dataclass(frozen=True)
class TemplateAssessment:
    """One chat template: where it is, what its code reaches for, how it renders."""

    key: str
    offset: int | None  # where its key/value entry starts in the file
    source: str
    code: tuple[CodeFinding, ...]
    unparsable: str | None
    renderings: tuple[Rendering, ...]
    tokens: dict[str, str]  # the special tokens it was rendered with (bos_token, eos_token)

    @property
    def stopped(self) -> tuple[Rendering, ...]:
        """Renderings the sandbox or its limits stopped (a list changed in place aside)."""
        return tuple(r for r in self.renderings if r.stopped)

    @property
    def dangerous(self) -> bool:
        return bool(self.code or self.stopped)

    def rendering(self, conversation: str) -> Rendering | None:
        return next((r for r in self.renderings if r.conversation == conversation), None)

    def standard_text(self) -> tuple[str, str] | None:
        """The standard conversation as the template renders it (without its system turn if it refuses one): (conversation, text)."""
        for name in (STANDARD_NAME, WITHOUT_SYSTEM_NAME):
            rendered = self.rendering(name)
            if rendered is not None and rendered.outcome == RENDERED and rendered.text is not None:
                return name, rendered.text
        return None


def chat_templates(header: GGUFHeader) -> dict[str, str]:
    """Every Jinja-bearing key of the header and its template, in file order."""
    return {
        key: value
        for key, value in header.metadata.items()
        if (key == TEMPLATE_KEY or key.startswith(TEMPLATE_KEY + ".")) and isinstance(value, str)
    }


def special_tokens(header: GGUFHeader) -> dict[str, str]:
    """bos_token and eos_token as the template sees them: the vocabulary's text of their ids ('' when absent)."""
    tokens = header.metadata.get("tokenizer.ggml.tokens")
    try:
        vocabulary = array_strings(header, tokens) if isinstance(tokens, ArrayValue) else []
    except HeaderError:
        vocabulary = []
    found = {}
    for name, key in TOKEN_KEYS.items():
        token_id = header.metadata.get(key)
        in_range = isinstance(token_id, int) and 0 <= token_id < len(vocabulary)
        found[name] = vocabulary[token_id].decode("utf-8", "replace") if in_range else ""  # type: ignore[index]
    return found


def assess_template(key: str, source: str, tokens: dict[str, str], offset: int | None = None) -> TemplateAssessment:
    """A template's code scanned and its conversations rendered in the sandbox."""
    from .template_code import Unparsable, names_read, parse, scan_tree  # jinja2: only for a model with a template

    try:
        tree = parse(source)  # once: the scan and the names it reads walk the same tree
        code, unparsable, uses_tools = tuple(scan_tree(tree, source)), None, "tools" in names_read(tree)
    except Unparsable as error:
        code, unparsable, uses_tools = (), str(error), False
    renderings = tuple(render_template(source, tokens, conversations(uses_tools)))
    return TemplateAssessment(key, offset, source, code, unparsable, renderings, tokens)


def assess_header(header: GGUFHeader) -> tuple[TemplateAssessment, ...]:
    """Every chat template of the header, assessed."""
    templates = chat_templates(header)
    if not templates:
        return ()
    tokens = special_tokens(header)
    return tuple(assess_template(key, source, tokens, header.metadata_offsets.get(key)) for key, source in templates.items())
