"""`template-renders`: chat templates rendered in the sandbox process, real ones and hostile ones.

The real templates must render as the runtimes render them (transformers' helpers are there, so a template that does
not render does so for its own reasons); the hostile ones must be stopped, by the sandbox or by its limits, in the
child process, leaving the pytest process, and the files around it, as they were.
"""

from __future__ import annotations

import datetime
import json
import re
import resource
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pytest_dfqs.safety.conversations import FIXED_DAY, STANDARD, TOOLS
from pytest_dfqs.safety.template_code import referenced_names
from pytest_dfqs.safety.template_render import (
    MEMORY,
    MUTATION,
    OUTPUT,
    RAISED,
    RENDERED,
    SECURITY,
    STANDARD_NAME,
    TIME,
    TOOL_CALL_NAME,
    TOOL_CALL_STRING_NAME,
    WITHOUT_SYSTEM_NAME,
    Rendering,
    conversations,
    render_template,
)
from pytest_dfqs.safety.template_safety import TEMPLATE_KEY, TemplateAssessment, assess_template
from tests.machine_speed import scaled

TOKENS = {"bos_token": "<s>", "eos_token": "</s>"}
SANDBOX_HELPERS = ("raise_exception", "strftime_now", "tojson", "from_json", "namespace", "range", "dict", "cycler", "joiner")
MISSING_HELPER = re.compile(r"No (?:filter|test) named|'(?:" + "|".join(SANDBOX_HELPERS) + r")' is undefined")
UNDEFINED_VARIABLE = re.compile(r"^UndefinedError: '(\w+)' is undefined$")
MAX_RSS_GROWTH_KIB = 2**18  # 256 MiB: what the pytest process's peak may grow by (ru_maxrss is in KiB); a bomb computed here passes it


def standard(source: str) -> Rendering:
    """`source` rendered on the standard conversation alone: one child process, one conversation."""
    (rendering,) = render_template(source, TOKENS, conversations(uses_tools=False)[:1])
    return rendering


def own_reason(assessment: TemplateAssessment, rendering: Rendering) -> bool:
    """The template refused the conversation itself (raise_exception), or read a variable it expects and was not given."""
    if rendering.outcome != RAISED:
        return False
    undefined = UNDEFINED_VARIABLE.match(rendering.message)
    if undefined is not None:
        name = undefined.group(1)
        return name in referenced_names(assessment.source) and name not in (*SANDBOX_HELPERS, *TOKENS, "messages", "tools")
    return rendering.message.startswith("TemplateError: ")  # raise_exception raises TemplateError; jinja2's own are named subclasses


def test_the_real_templates_render_with_the_runtimes_helpers(real_templates: dict[str, str]) -> None:
    """All 70 real templates: none dangerous, each renders the standard conversation (with its system turn or without),
    or fails on it for its own reason (firefunction reads `functions`, which no runtime passes).

    No rendering of any conversation, tool calls included, fails for want of something transformers' environment gives
    (a filter, a test, raise_exception, strftime_now): such a failure would be the sandbox's, blamed on the template.
    """

    def assess(source: str) -> TemplateAssessment:
        return assess_template(TEMPLATE_KEY, source, TOKENS)

    with ThreadPoolExecutor(max_workers=4) as pool:  # one child each; the children do the work
        assessed = dict(zip(real_templates, pool.map(assess, real_templates.values())))
    assert [name for name, assessment in assessed.items() if assessment.dangerous] == []
    assert [name for name, assessment in assessed.items() if assessment.unparsable] == []
    renderings = [(name, r) for name, a in assessed.items() for r in a.renderings]
    assert {f"{name} {r.conversation}": r.message for name, r in renderings if MISSING_HELPER.search(r.message)} == {}
    unrendered = {name: a for name, a in assessed.items() if a.standard_text() is None}
    plain = (STANDARD_NAME, WITHOUT_SYSTEM_NAME)
    reasons = {name: [r.message for r in a.renderings if r.conversation in plain] for name, a in unrendered.items()}
    assert all(own_reason(a, r) for a in unrendered.values() for r in a.renderings if r.conversation in plain), reasons
    outcomes = Counter((r.conversation, r.outcome) for a in assessed.values() for r in a.renderings)
    standard_texts = Counter(text[0] for a in assessed.values() if (text := a.standard_text()) is not None)
    print(f"\n{len(assessed)} real templates: the standard conversation rendered by {standard_texts[STANDARD_NAME]} with its system turn,")
    print(f"  by {standard_texts[WITHOUT_SYSTEM_NAME]} without it, by none in {len(unrendered)}: {reasons}")
    for name in (TOOL_CALL_NAME, TOOL_CALL_STRING_NAME):
        asked = sum(count for (conversation, _), count in outcomes.items() if conversation == name)
        print(f"  {name}, asked of {asked}: " + ", ".join(f"{o} {n}" for (c, o), n in outcomes.most_common() if c == name))


@pytest.mark.parametrize(
    ("source", "outcome"),
    [
        ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", TIME),
        ("{{ 'A' * 10**9 }}", MEMORY),
        ("{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}", TIME),
        ("{% for i in range(100000) %}xxxxxxxx{% endfor %}", OUTPUT),
        ("{{ 9 ** (9 ** 9) }}", TIME),
    ],
    ids=["nested-loops", "gigabyte-string", "exponential-macro", "output-800k", "bignum-power"],
)
def test_the_limits_stop_a_bomb_in_the_child(source: str, outcome: str) -> None:
    """Each bomb is stopped by the limit it runs into: the timer (nested loops, an exponential macro), the address space
    ('A' * 10**9, allocated when jinja2 folds it at compile time), the output cap (800,000 characters), or the CPU-time
    ceiling (a bignum power is one C operation the timer cannot interrupt: SIGXCPU ends the child).

    The pytest process is unharmed: it goes on, and its own peak memory does not grow by what the bomb asked for.
    """
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rendering = standard(source)
    assert (rendering.outcome, rendering.stopped, rendering.text) == (outcome, True, None)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < MAX_RSS_GROWTH_KIB


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{% for c in ''.__class__.__mro__[1].__subclasses__() %}{% if c.__name__ == 'catch_warnings' %}"
        "{{ c()._module.__builtins__['__import__']('os').popen('id').read() }}{% endif %}{% endfor %}",
    ],
    ids=["mro-subclasses", "catch-warnings-popen"],
)
def test_the_sandbox_stops_the_classic_escapes(source: str) -> None:
    """The walk from a string literal to object's subclasses, and on to os.popen('id'), ends at its first step."""
    rendering = standard(source)
    assert (rendering.outcome, rendering.stopped) == (SECURITY, True)
    assert rendering.message == "the sandbox refused it: access to attribute '__class__' of 'str' object is unsafe"


@pytest.mark.parametrize(
    "reach",
    [
        "cycler.__init__.__globals__.os.popen('touch {marker}').read()",
        "lipsum.__globals__.__builtins__.open('{marker}', 'w').write('owned')",
    ],
    ids=["os-popen", "builtins-open"],
)
def test_a_payload_that_writes_a_file_leaves_none(reach: str, tmp_path: Path) -> None:
    """The payload writes its marker file when a plain jinja2 Environment renders it (in a child: the proof it works),
    and the sandbox stops it before it reaches os or open: no marker file."""
    marker = tmp_path / "owned"
    source = "{{ " + reach.format(marker=marker) + " }}"
    plain = "import sys, jinja2; print(jinja2.Template(sys.stdin.read()).render())"
    subprocess.run([sys.executable, "-I", "-c", plain], input=source, text=True, capture_output=True, check=True, timeout=scaled(60))
    assert marker.exists()
    marker.unlink()
    rendering = standard(source)
    assert (rendering.outcome, rendering.stopped) == (SECURITY, True)
    assert not marker.exists()


def test_a_list_changed_in_place_is_a_mutation_not_a_danger() -> None:
    """`l.append(1)`: jinja2's immutable sandbox (transformers' too) refuses it; the template is wrong, not hostile."""
    assessment = assess_template(TEMPLATE_KEY, "{% set l = [] %}{{ l.append(1) }}", TOKENS)
    assert [r.outcome for r in assessment.renderings] == [MUTATION, MUTATION]
    assert "list.append changes the list in place" in assessment.renderings[0].message
    assert not assessment.dangerous and assessment.stopped == () and assessment.code == ()


def test_strftime_now_gives_the_fixed_day_so_renders_repeat() -> None:
    """strftime_now formats FIXED_DAY, not the clock: the standard and the system-less conversations give the same date."""
    renderings = render_template("{{ strftime_now('%d %B %Y %H:%M') }}", TOKENS, conversations(uses_tools=False))
    day = datetime.datetime.fromisoformat(FIXED_DAY).strftime("%d %B %Y %H:%M")
    assert [(r.outcome, r.text) for r in renderings] == [(RENDERED, day), (RENDERED, day)]


def test_tojson_serialises_a_filter_generator() -> None:
    """`tools|map(attribute='function')|tojson`, as minja renders it: the generator's items, not a TypeError."""
    asked = [c for c in conversations(uses_tools=True) if c["name"] == TOOL_CALL_NAME]
    (rendering,) = render_template("{{ tools|map(attribute='function')|tojson }}", TOKENS, asked)
    assert rendering.outcome == RENDERED and rendering.text is not None
    assert json.loads(rendering.text) == [tool["function"] for tool in TOOLS]


def test_from_json_parses_a_string() -> None:
    """from_json (vLLM's and minja's filter, which DeepSeek's templates use) parses JSON text the template holds."""
    rendering = standard("""{% set call = '{"city": "Paris", "days": [1, 2]}'|from_json %}{{ call.city }} {{ call.days[1] }}""")
    assert (rendering.outcome, rendering.text) == (RENDERED, "Paris 2")


def test_raise_exception_is_the_templates_own_refusal() -> None:
    """raise_exception gives `raised` with the template's message: a refusal, not a stop by the sandbox."""
    source = "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    rendering = standard(source)
    assert (rendering.outcome, rendering.message, rendering.stopped) == (RAISED, "TemplateError: System role not supported", False)
    assert STANDARD[0]["role"] == "system"
