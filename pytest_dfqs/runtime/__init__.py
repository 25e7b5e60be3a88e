"""llama.cpp in a worker process of its own.

Owns the worker (`worker`, run as `python -m pytest_dfqs.runtime.worker`; the
only module that imports llama_cpp, and only inside that process), its client
(`client`: `ModelRuntime`, one load per model, requests, the shared greedy
`generate` call), the memory preflight (`preflight`) and what the host offers
(`host`: memory, CPU, cores).

May import: `pytest_dfqs.modelfile` and `pytest_dfqs.verdict` (the status a
runtime failure gives the affected checks). Nothing here decides a clause.
"""
