"""The safety group's checks: `template-code` and `template-renders`, one finding each per model.

MET: no template reaches for Python objects (or the sandbox did not stop one);
NOT MET: a template is dangerous, what was found named with its key and line;
NOT APPLICABLE: the model has no chat template. Safety is not a DFQS clause: a
dangerous template fails the run (unless --dfqs-safety=warn) without changing
the DFQS verdict.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pytest_dfqs.verdict import Finding, Status

from .template_render import MAX_OUTPUT_CHARS, MEMORY_BYTES, RENDER_SECONDS, RENDERED, Rendering
from .template_safety import TEMPLATE_KEY, TemplateAssessment

TEMPLATE_CODE, TEMPLATE_RENDERS = "template-code", "template-renders"
SAFETY_CHECKS = {
    TEMPLATE_CODE: "The chat template's code, read without running it, reaches for no Python object, module or process",
    TEMPLATE_RENDERS: "The chat template renders the standard conversations in jinja2's sandbox within its time, output and memory limits",
}
SHOWN = 3  # findings named in a summary; the evidence holds them all
LIMITS = {"seconds_per_conversation": RENDER_SECONDS, "output_chars": MAX_OUTPUT_CHARS, "memory_bytes": MEMORY_BYTES}


def safety_finding(check: str, templates: tuple[TemplateAssessment, ...]) -> Finding:
    """The finding of safety check `check` over every chat template of a model."""
    if not templates:
        return Finding(check, Status.NOT_APPLICABLE, f"the model has no chat template ({TEMPLATE_KEY})")
    return _code_finding(templates) if check == TEMPLATE_CODE else _renders_finding(templates)


def _code_finding(templates: tuple[TemplateAssessment, ...]) -> Finding:
    evidence = {"templates": [_code_entry(t) for t in templates], "families": dict(_families(templates))}
    found = [(t.key, f) for t in templates for f in t.code]
    if found:
        named = "; ".join(f"{key} {f.describe()} ({f.family})" for key, f in found[:SHOWN])
        more = f" and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
        return Finding(TEMPLATE_CODE, Status.NOT_MET, f"the chat template reaches for Python objects: {named}{more}", evidence)
    unparsable = [f"{t.key} does not parse ({t.unparsable}): no jinja2 runtime renders it" for t in templates if t.unparsable]
    summary = f"{_keys(templates)}: no construct reaches for Python objects, modules or processes"
    return Finding(TEMPLATE_CODE, Status.MET, "; ".join([summary, *unparsable]), evidence)


def _renders_finding(templates: tuple[TemplateAssessment, ...]) -> Finding:
    evidence = {"templates": [_render_entry(t) for t in templates], "limits": LIMITS}
    stopped = [(t.key, r) for t in templates for r in t.stopped]
    if stopped:
        named = "; ".join(f"{key}, {r.conversation} conversation: {r.message}" for key, r in stopped[:SHOWN])
        return Finding(TEMPLATE_RENDERS, Status.NOT_MET, f"the sandbox stopped the chat template: {named}", evidence)
    notes = [note for t in templates for note in _render_notes(t)]
    summary = f"{_keys(templates)} rendered in jinja2's sandbox ({_rendered(templates)})"
    return Finding(TEMPLATE_RENDERS, Status.MET, "; ".join([summary, *notes]), evidence)


def _keys(templates: tuple[TemplateAssessment, ...]) -> str:
    names = ", ".join(t.key for t in templates)
    return (
        f"{len(templates)} chat template{'s' if len(templates) > 1 else ''} ({names}, {sum(len(t.source) for t in templates):,} characters)"
    )


def _rendered(templates: tuple[TemplateAssessment, ...]) -> str:
    counts = Counter(r.outcome for t in templates for r in t.renderings)
    return ", ".join(f"{counts[outcome]} {outcome}" for outcome in sorted(counts))


def _render_notes(template: TemplateAssessment) -> list[str]:
    """What the template refused or failed on (its own doing, not a danger)."""
    standard = template.standard_text()
    notes = []
    if standard is None:
        first = template.renderings[0]
        notes.append(f"{template.key} does not render the standard conversation: {first.message}")
    elif standard[0] != "standard":
        notes.append(f"{template.key} refuses a system turn ({template.renderings[0].message}); without it, it renders")
    tool_calls = [r for r in template.renderings if r.conversation.startswith("tool-call")]
    if tool_calls and all(r.outcome != RENDERED for r in tool_calls):
        notes.append(f"{template.key} does not render a tool call: {tool_calls[0].message}")
    return notes


def _code_entry(template: TemplateAssessment) -> dict[str, Any]:
    return {
        "key": template.key,
        "offset": template.offset,
        "chars": len(template.source),
        "unparsable": template.unparsable,
        "findings": [{"family": f.family, "construct": f.construct, "line": f.line} for f in template.code],
        "dangerous": template.dangerous,
    }


def _render_entry(template: TemplateAssessment) -> dict[str, Any]:
    return {
        "key": template.key,
        "offset": template.offset,
        "renderings": [_rendering(r) for r in template.renderings],
        "dangerous": template.dangerous,
    }


def _rendering(rendering: Rendering) -> dict[str, Any]:
    entry: dict[str, Any] = {"conversation": rendering.conversation, "outcome": rendering.outcome, "message": rendering.message}
    if rendering.text is not None:
        entry["chars"] = len(rendering.text)
    return entry


def _families(templates: tuple[TemplateAssessment, ...]) -> Counter[str]:
    return Counter(f.family for t in templates for f in t.code)
