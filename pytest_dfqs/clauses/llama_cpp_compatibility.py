"""DFQS-3.4: llama.cpp runtime compatibility.

The installed llama.cpp must accept the architecture and every tensor type
(the load itself) and the tokenizer must give back the sample texts it was
given. The model's chat template, when it has one, is told apart in two
renderings of the standard conversation: llama.cpp's built-in templates
(`llama_chat_apply_template`, which matches the template to a known form and
runs no Jinja) and the template's own, in the safety group's sandbox. Which
form llama.cpp took, and where the two differ, is said; a template llama.cpp
does not recognize is the model's fact (llama-server renders it with --jinja),
never an error of the check.
"""

from __future__ import annotations

from typing import Any

from pytest_dfqs.model import ModelUnderTest
from pytest_dfqs.runtime.client import ModelRuntime
from pytest_dfqs.safety.conversations import STANDARD, WITHOUT_SYSTEM
from pytest_dfqs.safety.template_safety import TEMPLATE_KEY, TemplateAssessment
from pytest_dfqs.verdict import Finding, Status

SAMPLE_TEXTS = (
    "Hello, world! This is a test of the tokenizer.",
    "def add(a, b):\n    return a + b",
    "Numbers 3.14159, 2,718 and 1e-9; symbols @#$%^&*()[]{}",
    "Zürich, São Paulo, Kraków",
    "multiple   spaces\tand\ttabs\nnew lines",
)
CONTEXT_CHARS = 40  # shown on each side of the first difference


def check_llama_cpp_load(model: ModelUnderTest) -> Finding:
    runtime = model.runtime()
    loaded = runtime.loaded()
    roundtrips = runtime.request("tokenizer_roundtrip", texts=list(SAMPLE_TEXTS))
    broken = [r for r in roundtrips if r["roundtrip"] != r["text"]]
    chat = _chat_renderings(model, runtime) if loaded["chat_template"] else None
    evidence = {
        "llama_cpp_python": loaded["llama_cpp_python"],
        "llama_cpp_build": loaded["system_info"],
        "model_description": loaded["description"],
        "n_params": loaded["n_params"],
        "tokenizer_roundtrips": roundtrips,
        "chat_template": "present" if loaded["chat_template"] else "absent",
        "chat_renderings": chat,
    }
    if broken:
        first = broken[0]
        return Finding(
            "llama-cpp-load",
            Status.NOT_MET,
            f"the tokenizer does not round-trip {len(broken)} of {len(SAMPLE_TEXTS)} sample texts:"
            f" {first['text']!r} came back as {first['roundtrip']!r}",
            evidence,
        )
    template = chat["summary"] if chat else "no chat template"
    return Finding(
        "llama-cpp-load",
        Status.MET,
        f"llama-cpp-python {loaded['llama_cpp_python']} loads it ({loaded['description']}); the tokenizer round-trips"
        f" {len(SAMPLE_TEXTS)} sample texts; {template}",
        evidence,
    )


def _chat_renderings(model: ModelUnderTest, runtime: ModelRuntime) -> dict[str, Any]:
    """The standard conversation in llama.cpp's built-in form of the template and in the template's own sandboxed rendering."""
    own = next((t for t in model.templates() if t.key == TEMPLATE_KEY), None)
    standard = own.standard_text() if own is not None else None
    messages = list(WITHOUT_SYSTEM if standard is not None and standard[0] == "without-system" else STANDARD)
    builtin = runtime.render_chat(messages)
    rendering = {"conversation": standard[0] if standard else "standard", "llama_cpp": builtin["text"], "llama_cpp_form": builtin["form"]}
    rendering["template"] = standard[1] if standard else None
    return {**rendering, "summary": _compared(builtin, own, standard[1] if standard else None)}


def _compared(builtin: dict[str, Any], own: TemplateAssessment | None, text: str | None) -> str:
    """What the two renderings say, in one clause of the finding's summary."""
    if own is not None and own.dangerous:
        why = "its chat template is dangerous (see the safety group): the suite renders it only in the sandbox"
        return why if builtin["text"] is None else f"llama.cpp renders its chat template as its {_form(builtin)}; {why}"
    if builtin["text"] is None:
        return "llama.cpp's built-in templates do not recognize its chat template: llama-server needs --jinja for it"
    if own is None or text is None:
        why = own.renderings[0].message if own is not None and own.renderings else f"no {TEMPLATE_KEY} to render"
        return f"llama.cpp renders its chat template as its {_form(builtin)}; the template itself does not render the conversation ({why})"
    return f"llama.cpp renders its chat template as its {_form(builtin)}; {_difference(builtin['text'], text, own.tokens['bos_token'])}"


def _form(builtin: dict[str, Any]) -> str:
    return f"{builtin['form']} form" if builtin["form"] else "built-in form (no built-in name renders the same)"


def _difference(builtin: str, own: str, token: str) -> str:
    """Where the template's own output first leaves llama.cpp's; a BOS the template writes itself is not a difference."""
    note = ""
    if token and own.startswith(token) and not builtin.startswith(token):
        own, note = own[len(token) :], f" (the template writes bos_token {token!r} itself, llama.cpp adds it when tokenizing)"
    if own == builtin:
        return f"the template's own rendering is the same{note}"
    at = next((i for i, (a, b) in enumerate(zip(own, builtin)) if a != b), min(len(own), len(builtin)))
    start = max(at - CONTEXT_CHARS, 0)
    return (
        f"the template's own output differs at character {at:,}{note}: llama.cpp {builtin[start : at + CONTEXT_CHARS]!r},"
        f" the template {own[start : at + CONTEXT_CHARS]!r}"
    )
