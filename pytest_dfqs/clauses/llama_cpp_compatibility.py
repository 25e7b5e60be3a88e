"""DFQS-3.4: llama.cpp runtime compatibility.

The installed llama.cpp must accept the architecture and every tensor type
(the load itself), the tokenizer must give back the sample texts it was given,
and the model's chat template, when it has one, must render.
"""

from __future__ import annotations

from pytest_dfqs.model import ModelUnderTest
from pytest_dfqs.verdict import Finding, Status

SAMPLE_TEXTS = (
    "Hello, world! This is a test of the tokenizer.",
    "def add(a, b):\n    return a + b",
    "Numbers 3.14159, 2,718 and 1e-9; symbols @#$%^&*()[]{}",
    "Zürich, São Paulo, Kraków",
    "multiple   spaces\tand\ttabs\nnew lines",
)
CHAT = ({"role": "system", "content": "You are concise."}, {"role": "user", "content": "Name one prime number."})


def check_llama_cpp_load(model: ModelUnderTest) -> Finding:
    runtime = model.runtime()
    loaded = runtime.loaded()
    roundtrips = runtime.request("tokenizer_roundtrip", texts=list(SAMPLE_TEXTS))
    broken = [r for r in roundtrips if r["roundtrip"] != r["text"]]
    chat = runtime.request("render_chat", messages=list(CHAT)) if loaded["chat_template"] else None
    evidence = {
        "llama_cpp_python": loaded["llama_cpp_python"],
        "llama_cpp_build": loaded["system_info"],
        "model_description": loaded["description"],
        "n_params": loaded["n_params"],
        "tokenizer_roundtrips": roundtrips,
        "chat_template": "present" if loaded["chat_template"] else "absent",
        "chat_rendered": chat,
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
    template = "its chat template renders" if chat else "no chat template"
    return Finding(
        "llama-cpp-load",
        Status.MET,
        f"llama-cpp-python {loaded['llama_cpp_python']} loads it ({loaded['description']}); the tokenizer round-trips"
        f" {len(SAMPLE_TEXTS)} sample texts; {template}",
        evidence,
    )
