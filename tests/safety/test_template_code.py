"""`template-code`: the static scan of a chat template, on llama.cpp's real templates and on the hostile corpus.

The scan reads jinja2's syntax tree and nothing else: these tests hold it to finding nothing in the 70 templates
real models ship, to finding every hostile payload (and under the family that names what it reaches for), to
naming the construct and its line, and to never computing what a bomb asks for in the process that scans it.
"""

from __future__ import annotations

import pytest

from pytest_dfqs.safety.template_code import (
    MODULES_AND_PROCESSES,
    OBFUSCATION,
    OBJECT_TRAVERSAL,
    PYTHON_GLOBALS,
    RESOURCES,
    CodeFinding,
    Unparsable,
    referenced_names,
    scan_template,
)
from tests.safety.hostile_templates import PAYLOADS, Payload

CODE_FAMILIES = ("object-traversal", "python-globals", "obfuscation", "modules-and-processes")  # the payloads that reach for objects
BOMB_FAMILIES = ("time-bomb", "memory-bomb")


def families(source: str) -> set[str]:
    return {finding.family for finding in scan_template(source)}


def test_no_real_template_has_a_finding(real_templates: dict[str, str]) -> None:
    """All 70 templates of llama.cpp's corpus parse and give no finding: the scan does not cry wolf on what models ship.

    Any finding here would fail a real model's run (a dangerous template fails it), so the expected count is 0, not "few".
    """
    found = {name: [finding.describe() for finding in scan_template(source)] for name, source in real_templates.items()}
    assert {name: findings for name, findings in found.items() if findings} == {}
    lines = sum(source.count("\n") + 1 for source in real_templates.values())
    with_tools = sum("tools" in referenced_names(source) for source in real_templates.values())
    print(f"\n{len(real_templates)} real templates, {lines:,} lines, {with_tools} reading tools: 0 findings, 0 unparsable")


def test_every_payload_family_is_in_the_corpus() -> None:
    """The corpus holds each family, so the parametrized tests below cover every kind of attack they name."""
    assert {payload.family for payload in PAYLOADS} == {*CODE_FAMILIES, *BOMB_FAMILIES}
    assert len({payload.name for payload in PAYLOADS}) == len(PAYLOADS) == 93


@pytest.mark.parametrize("payload", PAYLOADS, ids=[payload.name for payload in PAYLOADS])
def test_every_hostile_payload_is_found_under_its_kind(payload: Payload) -> None:
    """Each of the 93 hostile templates gives a finding, on a line of the template.

    A payload that reaches for Python objects is found by a code family (object traversal, Python globals, obfuscation,
    modules and processes), not merely as a resource risk; a time or memory bomb is found as resource exhaustion, even
    when it sits behind a condition the standard conversation never meets.
    """
    findings = scan_template(payload.source)
    assert findings, f"{payload.name}: no finding"
    assert all(1 <= finding.line <= payload.source.count("\n") + 1 for finding in findings)
    found = {finding.family for finding in findings}
    if payload.family in CODE_FAMILIES:
        assert found - {RESOURCES}, f"{payload.name}: only {sorted(found)}"
    else:
        assert RESOURCES in found, f"{payload.name}: {sorted(found)}"


def test_an_attribute_walk_is_named_with_its_line() -> None:
    """`''.__class__` on line 2 is reported as the attribute it reads, on line 2, not on the template's first line."""
    findings = scan_template("{{ messages[0]['content'] }}\n{{ ''.__class__ }}")
    assert findings == [CodeFinding(OBJECT_TRAVERSAL, "the attribute .__class__", 2)]
    assert findings[0].describe() == "line 2: the attribute .__class__"


def test_an_underscore_spelled_by_escapes_is_obfuscation_and_is_read_through() -> None:
    r"""`|attr('\x5f\x5fclass\x5f\x5f')`: the attr filter and the escapes are obfuscation, and the name they spell is found."""
    findings = scan_template(r"{{ ''|attr('\x5f\x5fclass\x5f\x5f') }}")
    assert CodeFinding(OBFUSCATION, "the attr filter, reading '__class__'", 1) in findings
    assert CodeFinding(OBFUSCATION, r"the escape \x5f spells an underscore", 1) in findings
    assert CodeFinding(OBJECT_TRAVERSAL, "the attribute |attr('__class__')", 1) in findings


def test_a_key_joined_from_pieces_is_folded_to_the_name_it_spells() -> None:
    """`''['__cla' ~ 'ss__']`: the key is folded from its constants, so the walk is found and the building is obfuscation."""
    findings = scan_template("{{ ''['__cla' ~ 'ss__'] }}")
    assert CodeFinding(OBJECT_TRAVERSAL, "the attribute ['__class__']", 1) in findings
    assert CodeFinding(OBFUSCATION, "a key built from strings: '__class__'", 1) in findings


def test_a_key_built_through_a_variable_is_followed() -> None:
    """A name set from constants and used as a key later (`{% set k = '__' ~ 'class__' %}`) is found where it is used."""
    findings = scan_template("{% set k = '__' ~ 'class__' %}\n{{ messages[k] }}")
    assert CodeFinding(OBJECT_TRAVERSAL, "the attribute ['__class__']", 2) in findings


def test_namespace_called_is_fine_but_namespace_as_an_object_is_not() -> None:
    """`namespace(...)` is how real templates keep state across a loop; `namespace.__init__` walks to its module's globals."""
    assert scan_template("{% set ns = namespace(count=0) %}{% for m in messages %}{% set ns.count = ns.count + 1 %}{% endfor %}") == []
    findings = scan_template("{{ namespace.__init__.__globals__ }}")
    assert CodeFinding(PYTHON_GLOBALS, "the global namespace used as an object, not called", 1) in findings
    assert CodeFinding(OBJECT_TRAVERSAL, "the attribute .__init__", 1) in findings
    assert CodeFinding(OBJECT_TRAVERSAL, "the attribute .__globals__", 1) in findings


def test_a_process_reached_through_globals_is_named() -> None:
    """`lipsum.__globals__.os.popen(...)`: the global, the walk and the module's function each found, by their families."""
    found = families("{{ lipsum.__globals__.os.popen('id').read() }}")
    assert found == {PYTHON_GLOBALS, OBJECT_TRAVERSAL, MODULES_AND_PROCESSES}


def test_recursion_over_data_is_fine_but_counted_recursion_is_exponential() -> None:
    """A macro calling itself twice on the data's children ends with the data (real schema renderers do it); twice on
    `n - 1` doubles the work per level, so it is resource exhaustion, reported at the macro's line."""
    over_data = "{% macro r(s) %}{% for k, v in s.items() %}{{ r(v) }}{{ r(v) }}{% endfor %}{% endmacro %}{{ r(tools) }}"
    assert scan_template(over_data) == []
    counted = "{{ messages|length }}\n{% macro f(n) %}{{ f(n-1) }}{{ f(n-1) }}{% endmacro %}{{ f(40) }}"
    assert scan_template(counted) == [CodeFinding(RESOURCES, "the macro f() calls itself 2 times per call", 2)]


def test_a_variable_joined_to_itself_doubles_but_one_growing_by_a_constant_does_not() -> None:
    """`ns.s = ns.s ~ ns.s` in a loop doubles its size each step (2**40 after 40); `ns.s = ns.s ~ 'x'` grows by one."""
    head = "{% set ns = namespace(s='x') %}\n{% for i in range(40) %}\n"
    doubling = scan_template(head + "{% set ns.s = ns.s ~ ns.s %}{% endfor %}")
    assert doubling == [CodeFinding(RESOURCES, "a variable set from itself joined to itself: it doubles with each step", 3)]
    assert scan_template(head + "{% set ns.s = ns.s ~ 'x' %}{% endfor %}") == []


def test_nested_constant_loops_are_counted_together() -> None:
    """Two loops of 100,000 (each within jinja's MAX_RANGE) make 10**10 steps: found; one loop of them is not."""
    nested = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    assert scan_template(nested) == [CodeFinding(RESOURCES, "range(100,000) inside loops of 100,000 steps: 10,000,000,000 steps", 1)]
    assert scan_template("{% for i in range(100000) %}x{% endfor %}") == []


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("source", "construct"),
    [
        ("{{ 'A' * 10**12 }}", "a repetition 1,000,000,000,000 times"),
        ("{{ '%10000000000s'|format('') }}", "a format field '%10000000000' of a huge width"),
        ("{{ 9 ** (9 ** 9) }}", "a power with the exponent 387,420,489"),
        ("{% set n = 10**9 %}{{ 'A' * n }}", "a repetition 1,000,000,000 times"),
    ],
    ids=["repetition", "format-width", "bignum-power", "repetition-by-variable"],
)
def test_the_scan_never_computes_a_bomb(source: str, construct: str) -> None:
    """A terabyte string, a 10-gigabyte format field, a 370-million-digit power: the scan returns (it would hang or raise
    MemoryError if it computed them, as jinja2's compiler does when it folds constants), and names the bomb.

    referenced_names reads the same tree, so it returns too (jinja2.meta.find_undeclared_variables would compile it).
    """
    assert CodeFinding(RESOURCES, construct, 1) in scan_template(source)
    assert referenced_names(source + "{{ tools }}") >= {"tools"}


def test_referenced_names_are_the_variables_read() -> None:
    """What the template reads from its context (so the tool conversation is asked only of templates that read `tools`)."""
    names = referenced_names("{% set ns = namespace(x=1) %}{% for m in messages %}{{ m.content }}{% endfor %}{{ tools|length }}")
    assert names == {"namespace", "messages", "m", "tools"}


@pytest.mark.parametrize(
    ("source", "line"),
    [("{{ messages }}\n\n{% if %}", 3), ("{{ messages }}\n{{ foo( }}", 2), ("{% for m in messages %}", 1)],
    ids=["empty-condition", "open-call", "unclosed-loop"],
)
def test_an_unparsable_template_raises_with_its_line(source: str, line: int) -> None:
    """A template jinja2 cannot parse raises Unparsable naming the line, for both the scan and the names it reads."""
    with pytest.raises(Unparsable, match=rf"^line {line}: "):
        scan_template(source)
    with pytest.raises(Unparsable, match=rf"^line {line}: "):
        referenced_names(source)
