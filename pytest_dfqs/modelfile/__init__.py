"""What the model file says without running it.

Owns the bounded, hostile-input-safe GGUF header reader (`header`), the facts
computed from it (`facts`: architecture, experts, parameters, dtypes), the
file's digest and expected digests (`integrity`), the built-in demo model
(`demo`) and how numbers are written (`units`).

May import: the standard library, `gguf` and `numpy`; nothing else of
pytest_dfqs. Everything else in the package may import it.
"""
