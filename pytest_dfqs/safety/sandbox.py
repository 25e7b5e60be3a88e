"""The child process that renders a chat template: jinja2's immutable sandbox under resource limits.

Run as `python -I -m pytest_dfqs.safety.sandbox`; it reads one job (JSON) on
stdin and writes one answer (JSON) on stdout. Before it reads the template it
limits itself: address space, CPU seconds, no file written, few descriptors;
each rendering is stopped by a timer and its output cut at a size. The sandbox
is transformers' environment (`raise_exception`, `strftime_now`, `tojson`,
loop controls, `{% generation %}`), and an attribute the sandbox refuses is
an error here, where jinja2 would render it as an empty value.
"""

from __future__ import annotations

import datetime
import json
import resource
import signal
import sys
from collections.abc import Callable, Iterator
from functools import partial
from types import FrameType
from typing import Any, cast

from jinja2 import Template, TemplateError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment, modifies_known_mutable

from .template_code import template_environment
from .template_render import FAILED, MEMORY, MUTATION, OUTPUT, RAISED, RECURSION, RENDERED, SECURITY, TIME


class TimeLimit(Exception):
    pass


class MutationRefused(SecurityError):
    """A template that changes a list or dict in place (`append`): not a reach for Python objects."""


class WatchedSandbox(ImmutableSandboxedEnvironment):
    """jinja2's immutable sandbox, where reaching for an unsafe attribute stops the rendering."""

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        if modifies_known_mutable(obj, attribute):
            raise MutationRefused(f"{type(obj).__name__}.{attribute} changes the {type(obj).__name__} in place")
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe")


def limit_resources(memory_bytes: int, cpu_seconds: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (16, 16))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def environment(day: str) -> ImmutableSandboxedEnvironment:
    sandbox = cast(ImmutableSandboxedEnvironment, template_environment(WatchedSandbox))

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    def strftime_now(pattern: str) -> str:
        return datetime.datetime.fromisoformat(day).strftime(pattern)

    def tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None, sort_keys: bool = False) -> str:
        options = {"ensure_ascii": ensure_ascii, "indent": indent, "separators": separators, "sort_keys": sort_keys}
        return json.dumps(value, default=_as_list, **options)

    sandbox.globals.update(raise_exception=raise_exception, strftime_now=strftime_now)
    sandbox.filters.update(tojson=tojson, from_json=json.loads)  # from_json: vLLM's and minja's, DeepSeek-V3.2 and V4 use it
    return sandbox


def outcome(action: Callable[[], dict[str, Any]], seconds: float) -> dict[str, Any]:
    """What `action` (a compilation or a rendering) gives within `seconds`, or what stopped it."""
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return action()
    except TimeLimit:
        return {"outcome": TIME, "message": f"still rendering after {seconds:g} s"}
    except MemoryError:
        return {"outcome": MEMORY, "message": "ran out of the memory allowed"}
    except MutationRefused as error:
        return {"outcome": MUTATION, "message": f"jinja2's immutable sandbox refused it: {error}"}
    except SecurityError as error:
        return {"outcome": SECURITY, "message": f"the sandbox refused it: {error}"}
    except RecursionError:
        return {"outcome": RECURSION, "message": "recursed past Python's stack limit"}
    except TemplateError as error:
        return {"outcome": RAISED, "message": f"{type(error).__name__}: {error}"}
    except Exception as error:  # the template's own failure on the conversation (a type error, say)
        return {"outcome": FAILED, "message": f"{type(error).__name__}: {error}"}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def generate(template: Template, context: dict[str, Any], max_chars: int) -> dict[str, Any]:
    chunks, size = [], 0
    for chunk in template.generate(**context):
        chunks.append(chunk)
        size += len(chunk)
        if size > max_chars:
            return {"outcome": OUTPUT, "message": f"the output passed {max_chars:,} characters"}
    return {"outcome": RENDERED, "text": "".join(chunks)}


def _as_list(value: Any) -> list[Any]:
    """What minja's tojson gives for a filter's generator (`tools|map(attribute='function')`): its items."""
    if isinstance(value, Iterator):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _on_timer(signum: int, frame: FrameType | None) -> None:
    raise TimeLimit


def main() -> None:
    job = json.loads(sys.stdin.read())
    limits = job["limits"]
    limit_resources(limits["memory_bytes"], limits["cpu_seconds"])
    signal.signal(signal.SIGALRM, _on_timer)
    sandbox = environment(job["day"])
    compiled = outcome(lambda: {"outcome": RENDERED, "template": sandbox.from_string(job["template"])}, limits["seconds"])
    template: Template | None = compiled.pop("template", None)
    answers = []
    for conversation in job["conversations"]:
        context = {"add_generation_prompt": True, **job["tokens"], **conversation["context"]}
        rendering = partial(generate, template, context, limits["chars"]) if template is not None else None
        answer = compiled if rendering is None else outcome(rendering, limits["seconds"])
        answers.append({"name": conversation["name"], **answer})
    sys.stdout.write(json.dumps(answers))


if __name__ == "__main__":
    main()
