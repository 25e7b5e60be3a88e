"""The spec's clauses: one module per clause or section that decides findings.

Each module turns a model under test into `Finding`s for its checks:
single file (3.1; `loader_rules` and `tensor_shapes` predict llama.cpp's
loader from the header), routing structure and determinism (3.3), CPU operation
(3.2), llama.cpp compatibility (3.4), long-context degradation (3.5), GPU
acceleration (3.6), extended context (3.7), the evaluation interface (11),
artifact integrity and the reference profile (5, 9, 14). `registry` maps the
catalogue's check ids to them and is the one way to run a check.

May import: `pytest_dfqs.evaluation`, `pytest_dfqs.model`, `pytest_dfqs.runtime`,
`pytest_dfqs.modelfile`, `pytest_dfqs.verdict`, `pytest_dfqs.catalogue`.
Not the reports, the session or the pytest hooks.
"""
