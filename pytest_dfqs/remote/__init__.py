"""Models that are not on this machine: a GGUF by URL or on the Hugging Face Hub.

Owns what a model's name says (`source`: a path, an http(s) URL, `hf://`), the
bounded byte-range reader every remote byte comes through (`ranges`), and the
header fetched into a sparse local file of the remote size (`header_fetch`),
on which every static check runs unchanged.

May import: `pytest_dfqs.modelfile` (the bounded header reader). Never imports
pytest: the hooks turn a `RemoteError` into the one line the user reads.
"""
