"""The conversations every chat template is rendered with: the standard one, one with a tool call.

The standard conversation (system, user, assistant, user) is what DFQS-3.4
compares between llama.cpp's built-in templates and the model's own; templates
that refuse a system turn are rendered without it. The tool conversation is
rendered only by templates that read `tools`. Dates come from a fixed day so a
template's output is the same on every run.
"""

from __future__ import annotations

from typing import Any

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
STANDARD: tuple[dict[str, str], ...] = (
    SYSTEM,
    {"role": "user", "content": "What is 2 + 2?"},
    {"role": "assistant", "content": "2 + 2 = 4."},
    {"role": "user", "content": "And 3 + 3?"},
)
WITHOUT_SYSTEM = STANDARD[1:]
TOOLS: tuple[dict[str, Any], ...] = (
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "The city's name."}},
                "required": ["city"],
            },
        },
    },
)
CALL_ID = "call00001"  # nine letters and digits: what Mistral's templates demand of an id


def with_tool_call(arguments: dict[str, Any] | str) -> tuple[dict[str, Any], ...]:
    """A tool called and answered; the arguments as an object (transformers' convention) or as a JSON string (OpenAI's)."""
    call = {"id": CALL_ID, "type": "function", "function": {"name": "get_weather", "arguments": arguments}}
    return (
        SYSTEM,
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": CALL_ID, "name": "get_weather", "content": '{"temperature_c": 18}'},
    )


WITH_TOOL_CALL = with_tool_call({"city": "Paris"})
WITH_TOOL_CALL_STRING = with_tool_call('{"city": "Paris"}')
FIXED_DAY = "2026-01-15T12:00:00"  # what strftime_now formats: a fixed day, so renders repeat
