"""`template-code`: what a chat template's code reaches for, read from its syntax tree without rendering it.

jinja2 parses the template into its AST (`Environment.parse`: no code of the
template runs) and every node is searched for what leaves the template's data:

- object traversal: attributes and keys starting with `_` (`__class__`,
  `__mro__`, `__globals__`, `_TemplateReference__context`), however spelled;
- Python globals: jinja2's `lipsum`, `self`, Flask's `request` and `config`,
  and `cycler`, `joiner`, `namespace` used other than called;
- obfuscation: the `attr` filter, attribute names built from strings (joined,
  repeated, formatted, reversed, replaced; constant parts folded, variables
  set from constants followed), escapes such as `\\x5f` in string literals,
  format strings that read attributes (`'{0.__class__}'.format(x)`);
- modules and processes: names such as `os`, `popen`, `subprocess`, `eval`,
  `__import__`, as variables, attributes or keys;
- resource exhaustion, even behind a condition the standard conversation never
  meets: nested constant loops and ranges past `MAX_WORK` steps, repetition by
  `MAX_REPEAT` or more, huge powers and widths, macros that call themselves
  more than once per call, recursive loops fed built lists, a variable that
  doubles itself.

Real templates (70 in llama.cpp's corpus) use none of these; a finding names
the construct and its line. What the scan cannot prove: a template's safety in
a renderer other than jinja2's sandbox (llama.cpp's minja has no Python
objects to reach), or the absence of a construct it does not know.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, TemplateSyntaxError, nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.parser import Parser

OBJECT_TRAVERSAL, PYTHON_GLOBALS, OBFUSCATION, MODULES_AND_PROCESSES, RESOURCES = (
    "object-traversal",
    "python-globals",
    "obfuscation",
    "modules-and-processes",
    "resource-exhaustion",
)
MAX_WORK = 10**7  # loop iterations times range sizes, nested
MAX_REPEAT = 10_000  # a string or list repeated this often ('=' * 80 is what templates do)
MAX_EXPONENT = 64
WIDTH_FILTERS = frozenset({"center", "indent", "wordwrap", "truncate", "ljust", "rjust", "zfill", "expandtabs", "format"})
WIDE_FIELD = re.compile(r"%[-#0 +]*\d{5,}|\{[^{}]*:[^{}]*\d{5,}[^{}]*\}")
GLOBAL_OBJECTS = frozenset({"lipsum", "self", "request", "config", "g", "url_for", "get_flashed_messages", "range"})
CALLABLE_GLOBALS = frozenset({"cycler", "joiner", "namespace", "range", "dict"})  # safe when called, Python objects otherwise
PROCESS_NAMES = frozenset(
    {
        "os",
        "sys",
        "subprocess",
        "popen",
        "system",
        "spawn",
        "exec",
        "eval",
        "compile",
        "import_module",
        "builtins",
        "importlib",
        "open",
        "getattr",
        "setattr",
        "globals",
        "locals",
        "vars",
        "breakpoint",
        "pty",
        "socket",
        "shutil",
        "ctypes",
        "pickle",
        "marshal",
        "posix",
        "catch_warnings",
        "check_output",
        "check_call",
        "run",
        "read",
    }
)
ATTRIBUTE_PROCESS_NAMES = PROCESS_NAMES - {"run", "read", "system", "open"}  # plain words templates use as data keys
STRING_BUILDERS = frozenset({"join", "format", "reverse", "replace", "string", "lower", "upper", "first", "last", "list", "trim"})
ESCAPE = re.compile(r"\\(x5f|u005f|U0000005f|137|N\{LOW LINE\})", re.IGNORECASE)
FORMAT_FIELD_ACCESS = re.compile(r"\{[^{}]*[.\[][^{}]*\}")
MAX_FOLDED = 4096  # a folded string longer than this is not followed further
WIDE_FORMAT = re.compile(r"\d{4,}|\*")  # a format with a width or precision of thousands (or given at run time) is not folded


@dataclass(frozen=True)
class CodeFinding:
    """One construct of a template that reaches outside its data."""

    family: str
    construct: str
    line: int

    def describe(self) -> str:
        return f"line {self.line}: {self.construct}"


class Generation(Extension):
    """transformers' `{% generation %}` tag (its AssistantTracker): parsed as a plain block."""

    tags = {"generation"}

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


def template_environment(environment: type[Environment] = Environment) -> Environment:
    """The environment chat templates are written for: transformers' settings and extensions."""
    return environment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols, Generation])


class Unparsable(Exception):
    """jinja2 cannot parse the template: no runtime that uses jinja2 renders it."""


def parse(source: str) -> nodes.Template:
    """The template's syntax tree (nothing of it runs); Unparsable if jinja2 cannot read it."""
    try:
        return template_environment().parse(source)
    except TemplateSyntaxError as error:
        raise Unparsable(f"line {error.lineno}: {error.message}") from None


def referenced_names(source: str) -> set[str]:
    """Every variable name the template reads (`messages`, `tools`, ...); Unparsable if jinja2 cannot read it."""
    return names_read(parse(source))


def names_read(tree: nodes.Template) -> set[str]:
    """Every variable name a template's tree reads, from the tree alone.

    Not jinja2.meta.find_undeclared_variables: that runs the code generator, which folds constant expressions, so
    `'A' * 10**10` would be computed in this process.
    """
    return {name.name for name in tree.find_all(nodes.Name) if name.ctx == "load"}


def scan_template(source: str) -> list[CodeFinding]:
    """Every construct of `source` that reaches for Python objects, in line order; Unparsable if jinja2 cannot read it."""
    return scan_tree(parse(source), source)


def scan_tree(tree: nodes.Template, source: str) -> list[CodeFinding]:
    """Every construct of a template's tree (and escape of its source) that reaches for Python objects, in line order."""
    scan = _Scan(_assignments(tree))
    found = list(scan.run(tree)) + list(_escapes(source)) + list(_Work(scan).run(tree))
    unique = {(f.line, f.family, f.construct): f for f in found}
    return sorted(unique.values(), key=lambda f: (f.line, f.family, f.construct))


def _escapes(source: str) -> Iterator[CodeFinding]:
    for match in ESCAPE.finditer(source):
        line = source.count("\n", 0, match.start()) + 1
        yield CodeFinding(OBFUSCATION, f"the escape {match.group(0)} spells an underscore", line)


def _assignments(tree: nodes.Template) -> dict[str, list[nodes.Node]]:
    """What each variable name is set to anywhere in the template (`set` targets, namespace fields)."""
    assigned: dict[str, list[nodes.Node]] = {}
    for node in tree.find_all(nodes.Assign):
        for name in _target_names(node.target):
            assigned.setdefault(name, []).append(node.node)
    return assigned


def _target_names(target: nodes.Node) -> Iterator[str]:
    if isinstance(target, nodes.Name):
        yield target.name
    elif isinstance(target, nodes.NSRef):
        yield f"{target.name}.{target.attr}"
    elif isinstance(target, nodes.Tuple):
        for item in target.items:
            yield from _target_names(item)


class _Scan:
    def __init__(self, assigned: dict[str, list[nodes.Node]]) -> None:
        self.assigned = assigned
        self.local_names = set(assigned)

    def run(self, tree: nodes.Template) -> Iterator[CodeFinding]:
        self.local_names |= {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
        called = {id(call.node) for call in tree.find_all(nodes.Call)}
        for node in tree.find_all(nodes.Node):
            check = CHECKS.get(type(node))
            if check is not None:
                yield from check(self, node, called)

    def getattr_(self, node: nodes.Getattr, called: set[int]) -> Iterator[CodeFinding]:
        yield from self._attribute(node.attr, node.lineno, f".{node.attr}", ATTRIBUTE_PROCESS_NAMES | {"open", "system"})
        if node.attr in ("format", "format_map"):  # called here or stored for later (`{% set f = '{0.__class__}'.format %}`)
            yield from self._format_string(node.node, node.lineno)

    def getitem(self, node: nodes.Getitem, called: set[int]) -> Iterator[CodeFinding]:
        key = self.fold(node.arg)
        if isinstance(key, str):
            yield from self._attribute(key, node.lineno, f"[{key!r}]", ATTRIBUTE_PROCESS_NAMES - {"os"})
            if not isinstance(node.arg, nodes.Const) and _dangerous_name(key):
                yield CodeFinding(OBFUSCATION, f"a key built from strings: {key!r}", node.lineno)
        elif self._builds_string(node.arg):
            yield CodeFinding(OBFUSCATION, "a key built from strings that cannot be read before rendering", node.lineno)

    def filter_(self, node: nodes.Filter, called: set[int]) -> Iterator[CodeFinding]:
        if node.name == "attr":
            name = self.fold(node.args[0]) if node.args else None
            spelled = repr(name) if isinstance(name, str) else "a name built at render time"
            yield CodeFinding(OBFUSCATION, f"the attr filter, reading {spelled}", node.lineno)
            if isinstance(name, str):
                yield from self._attribute(name, node.lineno, f"|attr({name!r})", ATTRIBUTE_PROCESS_NAMES)
        elif node.name == "format" and node.node is not None:
            yield from self._format_string(node.node, node.lineno)
        yield from self._built(node)

    def call(self, node: nodes.Call, called: set[int]) -> Iterator[CodeFinding]:
        target = node.node
        if isinstance(target, nodes.Name) and target.name in PROCESS_NAMES and target.name not in self.local_names:
            yield CodeFinding(MODULES_AND_PROCESSES, f"a call of {target.name}()", node.lineno)
        for keyword in node.kwargs:
            if keyword.key.startswith("_"):
                yield CodeFinding(OBFUSCATION, f"the keyword name {keyword.key!r}, a string by another spelling", node.lineno)
        yield from self._built(node)

    def name(self, node: nodes.Name, called: set[int]) -> Iterator[CodeFinding]:
        if node.ctx != "load" or node.name in self.local_names:
            return
        if node.name in GLOBAL_OBJECTS - CALLABLE_GLOBALS:
            yield CodeFinding(PYTHON_GLOBALS, f"the global {node.name}, a Python object", node.lineno)
        elif node.name in CALLABLE_GLOBALS and id(node) not in called:
            yield CodeFinding(PYTHON_GLOBALS, f"the global {node.name} used as an object, not called", node.lineno)
        elif node.name in ATTRIBUTE_PROCESS_NAMES or node.name.startswith("__"):
            yield CodeFinding(MODULES_AND_PROCESSES, f"the name {node.name}", node.lineno)

    def operator(self, node: nodes.Expr, called: set[int]) -> Iterator[CodeFinding]:
        yield from self._built(node)

    def _built(self, node: nodes.Expr) -> Iterator[CodeFinding]:
        """A string built by concatenation, repetition or filters that spells an attribute or a module."""
        value = self.fold(node)
        if isinstance(value, str) and _dangerous_name(value.strip()):
            yield CodeFinding(OBFUSCATION, f"a string built to spell {value.strip()!r}", node.lineno)

    def _attribute(self, name: str, line: int, spelled: str, processes: frozenset[str]) -> Iterator[CodeFinding]:
        if name.startswith("_"):
            yield CodeFinding(OBJECT_TRAVERSAL, f"the attribute {spelled}", line)
        elif name.lower() in processes:  # `Popen` as well as `popen`
            yield CodeFinding(MODULES_AND_PROCESSES, f"the attribute {spelled}", line)

    def _format_string(self, node: nodes.Expr, line: int) -> Iterator[CodeFinding]:
        pattern = self.fold(node)
        if isinstance(pattern, str) and FORMAT_FIELD_ACCESS.search(pattern):
            yield CodeFinding(OBFUSCATION, f"a format string that reads attributes: {pattern[:60]!r}", line)

    def _builds_string(self, node: nodes.Expr) -> bool:
        """An expression made by string operations (the parts need not be constants)."""
        if isinstance(node, nodes.Concat):
            return True
        if isinstance(node, nodes.Filter):
            return node.name in STRING_BUILDERS
        if isinstance(node, (nodes.Mul, nodes.Add, nodes.Mod)):
            return any(isinstance(self.fold(side), str) or self._builds_string(side) for side in (node.left, node.right))
        if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
            return node.node.attr in ("format", "join", "replace")
        return False

    def fold(self, node: nodes.Node, depth: int = 0) -> Any:
        """The value of an expression made of constants, or None; variables set to such expressions are followed."""
        if depth > 20:
            return None
        try:
            value = _fold(self, node, depth + 1)
        except (TypeError, ValueError, IndexError, KeyError, AttributeError, OverflowError):
            return None
        if isinstance(value, (str, list)) and len(value) > MAX_FOLDED:
            return None
        return value


def _dangerous_name(value: str) -> bool:
    return value.startswith("_") or "__" in value or value in ATTRIBUTE_PROCESS_NAMES


def _fold(scan: _Scan, node: nodes.Node, depth: int) -> Any:
    fold: Callable[[nodes.Node], Any] = lambda child: scan.fold(child, depth)  # noqa: E731
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, (nodes.List, nodes.Tuple)):
        return [fold(item) for item in node.items]
    if isinstance(node, nodes.Concat):
        parts = [fold(item) for item in node.nodes]
        return None if any(part is None for part in parts) else "".join(str(part) for part in parts)
    if isinstance(node, nodes.Name):
        values = scan.assigned.get(node.name, [])
        return fold(values[0]) if len(values) == 1 else None
    if isinstance(node, nodes.NSRef):
        return None
    if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
        values = scan.assigned.get(f"{node.node.name}.{node.attr}", [])
        return fold(values[0]) if len(values) == 1 else None
    if isinstance(node, nodes.BinExpr):
        return _binary(node.operator, fold(node.left), fold(node.right))
    if isinstance(node, nodes.Getitem):
        return _subscript(fold(node.node), node.arg, fold)
    if isinstance(node, nodes.Filter):
        return _filter(node.name, fold(node.node) if node.node is not None else None, [fold(a) for a in node.args])
    if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
        return _method(fold(node.node.node), node.node.attr, [fold(a) for a in node.args])
    if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name) and node.node.name == "dict":
        return {keyword.key: fold(keyword.value) for keyword in node.kwargs}
    return None


def _binary(operator: str, left: Any, right: Any) -> Any:
    if left is None or right is None:
        return None
    if operator == "*" and isinstance(left, int) and isinstance(right, int):
        return left * right if abs(left * right) < 10**12 else None
    if operator == "*" and (isinstance(left, int) and left > MAX_FOLDED or isinstance(right, int) and right > MAX_FOLDED):
        return None
    if operator == "**" and isinstance(right, int) and right > 64:
        return None
    return {"+": lambda: left + right, "*": lambda: left * right, "%": lambda: left % right, "**": lambda: left**right}.get(
        operator, lambda: None
    )()


def _subscript(value: Any, arg: nodes.Expr, fold: Callable[[nodes.Node], Any]) -> Any:
    if isinstance(arg, nodes.Slice):
        bounds = [fold(part) if part is not None else None for part in (arg.start, arg.stop, arg.step)]
        return value[slice(*bounds)] if isinstance(value, (str, list)) else None
    key = fold(arg)
    return None if value is None or key is None else value[key]


def _filter(name: str, value: Any, args: list[Any]) -> Any:
    if value is None or any(arg is None for arg in args):
        return None
    if name == "join":
        return str(args[0] if args else "").join(str(item) for item in value)
    if name == "format":
        return None if WIDE_FORMAT.search(value) else value % (tuple(args) if len(args) != 1 else args[0])
    if name == "reverse":
        return value[::-1]
    if name == "replace":
        return value.replace(*args)
    if name in ("lower", "upper", "trim"):
        return value.lower() if name == "lower" else value.upper() if name == "upper" else value.strip()
    if name in ("first", "last"):
        items = list(value)
        return items[0] if name == "first" else items[-1]
    if name == "list":
        return list(value)
    if name == "string":
        return str(value)
    return None


def _method(value: Any, method: str, args: list[Any]) -> Any:
    if not isinstance(value, str) or any(arg is None for arg in args):
        return None
    if method == "format":
        return value.format(*args) if not FORMAT_FIELD_ACCESS.search(value) and not WIDE_FORMAT.search(value) else None
    if method in ("join", "replace", "lower", "upper", "strip", "capitalize", "title"):
        return getattr(value, method)(*args) if method != "join" else value.join(str(item) for item in args[0])
    return None


class _Work:
    """What a template could make its renderer compute, read from constants: loops, repetitions, widths, recursion."""

    def __init__(self, scan: _Scan) -> None:
        self.fold = scan.fold
        self.assigned = scan.assigned

    def run(self, tree: nodes.Template) -> Iterator[CodeFinding]:
        yield from self._within(tree, 1)
        for macro in tree.find_all(nodes.Macro):
            yield from self._recursion(macro)
        for loop in tree.find_all(nodes.For):
            yield from self._recursive_loop(loop)
        for assign in tree.find_all(nodes.Assign):
            yield from self._doubling(assign)
        for node in tree.find_all((nodes.Mul, nodes.Pow, nodes.Filter, nodes.Call, nodes.Const)):
            yield from self._size(node)

    def _within(self, node: nodes.Node, factor: int) -> Iterator[CodeFinding]:
        """Constant loops and ranges, each counted with the loops around it."""
        for child in node.iter_child_nodes():
            count = self._range(child)
            if count is not None and factor * count > MAX_WORK:
                yield CodeFinding(RESOURCES, f"range({count:,}) inside loops of {factor:,} steps: {factor * count:,} steps", child.lineno)
            if isinstance(child, nodes.For):
                yield from self._within(child.iter, factor)
                steps = self._range(child.iter) or self._repeated(child.iter) or 1
                for body in (*child.body, *child.else_):
                    yield from self._within(body, factor * steps)
            else:
                yield from self._within(child, factor)

    def _range(self, node: nodes.Node, depth: int = 0) -> int | None:
        """The length of a constant range, also through `|list` and a variable set to one."""
        if isinstance(node, nodes.Filter) and node.name in ("list", "reverse", "sort", "unique") and node.node is not None:
            return self._range(node.node, depth)
        if isinstance(node, nodes.Name) and depth < 8 and len(self.assigned.get(node.name, [])) == 1:
            return self._range(self.assigned[node.name][0], depth + 1)
        if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name) and node.node.name == "range" and node.args:
            bounds = [self.fold(arg) for arg in node.args]
            if all(isinstance(bound, int) for bound in bounds) and len(bounds) <= 3:
                return len(range(*bounds)) if 0 not in bounds[2:] else None
        return None

    def _repeated(self, node: nodes.Node) -> int | None:
        if isinstance(node, nodes.Mul):
            counts = [self.fold(side) for side in (node.left, node.right)]
            return next((count for count in counts if isinstance(count, int)), None)
        return None

    def _size(self, node: nodes.Node) -> Iterator[CodeFinding]:
        if isinstance(node, nodes.Mul):
            count = self._repeated(node)
            if count is not None and count >= MAX_REPEAT and not all(isinstance(self.fold(s), int) for s in (node.left, node.right)):
                yield CodeFinding(RESOURCES, f"a repetition {count:,} times", node.lineno)
        elif isinstance(node, nodes.Pow):
            exponent = self.fold(node.right)
            if isinstance(exponent, int) and exponent > MAX_EXPONENT:
                yield CodeFinding(RESOURCES, f"a power with the exponent {exponent:,}", node.lineno)
        elif isinstance(node, nodes.Const):
            field = WIDE_FIELD.search(node.value) if isinstance(node.value, str) else None
            if field is not None:
                yield CodeFinding(RESOURCES, f"a format field {field.group(0)!r} of a huge width", node.lineno)
        elif isinstance(node, (nodes.Filter, nodes.Call)):
            yield from self._width(node)

    def _width(self, node: nodes.Filter | nodes.Call) -> Iterator[CodeFinding]:
        """center(10**10), indent(10**9), '...'.ljust(...): a width that makes the output huge."""
        if isinstance(node, nodes.Filter):
            name: str | None = node.name
        else:
            name = node.node.attr if isinstance(node.node, nodes.Getattr) else None
        widths = [self.fold(arg) for arg in node.args] if name in WIDTH_FILTERS else []
        wide = next((w for w in widths if isinstance(w, int) and w >= MAX_REPEAT), None)
        if wide is not None:
            yield CodeFinding(RESOURCES, f"{name}() with a width of {wide:,}", node.lineno)

    def _recursion(self, macro: nodes.Macro) -> Iterator[CodeFinding]:
        """A macro that calls itself with counted arguments (`f(n - 1)`) more than once per call: exponential.

        Recursion over data (`render(schema.properties)`) ends with the data and is what real templates do.
        """
        calls = sum(self._calls_in(body, macro.name, 1) for body in macro.body)
        if calls > 1:
            yield CodeFinding(RESOURCES, f"the macro {macro.name}() calls itself {calls:,} times per call", macro.lineno)

    def _calls_in(self, node: nodes.Node, name: str, factor: int) -> int:
        counted = isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name) and node.node.name == name and self._counting(node)
        if isinstance(node, nodes.For):
            factor *= self._range(node.iter) or 1
        return int(counted) * factor + sum(self._calls_in(child, name, factor) for child in node.iter_child_nodes())

    def _counting(self, call: nodes.Call) -> bool:
        """Every argument made by arithmetic on constants and counters (`n - 1`), none read from the data."""
        arguments = [*call.args, *(keyword.value for keyword in call.kwargs)]
        return bool(arguments) and all(self._counter(arg) for arg in arguments)

    def _counter(self, node: nodes.Node) -> bool:
        if isinstance(node, nodes.Name):  # a counter only if it is set by arithmetic; a parameter or loop item is data
            return any(isinstance(value, nodes.BinExpr) for value in self.assigned.get(node.name, []))
        if isinstance(node, nodes.BinExpr):
            return all(isinstance(side, (nodes.Name, nodes.Const)) or self._counter(side) for side in (node.left, node.right))
        return isinstance(node, nodes.Const) and isinstance(node.value, (int, float))

    def _recursive_loop(self, loop: nodes.For) -> Iterator[CodeFinding]:
        """A recursive loop that feeds `loop()` lists it builds (not the data's own children) may never end."""
        if not loop.recursive:
            return
        calls = [c for c in loop.find_all(nodes.Call) if isinstance(c.node, nodes.Name) and c.node.name == "loop"]
        built = [c for c in calls if any(isinstance(arg, (nodes.List, nodes.Tuple, nodes.Mul, nodes.Concat)) for arg in c.args)]
        if built or len(calls) > 1:
            yield CodeFinding(RESOURCES, f"a recursive loop fed {'built lists' if built else f'{len(calls)} times per step'}", loop.lineno)

    def _doubling(self, assign: nodes.Assign) -> Iterator[CodeFinding]:
        """`{% set s = s ~ s %}`, `s * 2`, `[s, s]|join`, through a temporary: a variable that grows by itself doubles each step."""
        target = assign.target
        if not isinstance(target, (nodes.Name, nodes.NSRef)):
            return
        value = assign.node
        parts = list(_operands(value))
        if isinstance(value, nodes.Filter) and value.name == "join" and isinstance(value.node, (nodes.List, nodes.Tuple)):
            parts = list(value.node.items)
        uses = [part for part in parts if self._is(part, target)]
        repeated = isinstance(value, nodes.Mul) and any(self._is(side, target) for side in (value.left, value.right))
        if len(uses) > 1 or (repeated and isinstance(self._repeated(value), int) and (self._repeated(value) or 0) >= 2):
            yield CodeFinding(RESOURCES, "a variable set from itself joined to itself: it doubles with each step", assign.lineno)

    def _is(self, node: nodes.Node, target: nodes.Name | nodes.NSRef) -> bool:
        """`node` is the target variable, or a variable set to it (`{% set t = ns.s %}`)."""
        if _same_variable(node, target):
            return True
        values = self.assigned.get(node.name, []) if isinstance(node, nodes.Name) else []
        return len(values) == 1 and _same_variable(values[0], target)


def _operands(node: nodes.Node) -> Iterator[nodes.Node]:
    """The parts a chain of `~` and `+` joins."""
    if isinstance(node, nodes.Concat):
        for part in node.nodes:
            yield from _operands(part)
    elif isinstance(node, nodes.Add):
        yield from _operands(node.left)
        yield from _operands(node.right)
    else:
        yield node


def _same_variable(node: nodes.Node, target: nodes.Name | nodes.NSRef) -> bool:
    if isinstance(target, nodes.Name):
        return isinstance(node, nodes.Name) and node.name == target.name
    return (
        isinstance(node, nodes.Getattr) and node.attr == target.attr and isinstance(node.node, nodes.Name) and node.node.name == target.name
    )


CHECKS: dict[type, Callable[[_Scan, Any, set[int]], Iterator[CodeFinding]]] = {
    nodes.Getattr: _Scan.getattr_,
    nodes.Getitem: _Scan.getitem,
    nodes.Filter: _Scan.filter_,
    nodes.Call: _Scan.call,
    nodes.Name: _Scan.name,
    nodes.Concat: _Scan.operator,
    nodes.Mul: _Scan.operator,
    nodes.Add: _Scan.operator,
    nodes.Mod: _Scan.operator,
}
