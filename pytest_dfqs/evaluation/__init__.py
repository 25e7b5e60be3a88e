"""Section 11: the five metrics under identical, recorded conditions.

One module per metric: `reasoning` (reasoning_score), `code` with its
`sandbox` (code_score), `context_stability` (context_stability_curve and
failure_boundary_tokens), `throughput` (cpu_tokens_per_sec), `routing_pressure`
(section 10's routing under token pressure, two curves in the details); `budget` (the
fixed subsets), `record` (the metrics record: schema, validation, baseline
comparison) and `orchestrator` (one evaluation per model, the conditions).
Deciding clauses 3.5, 11.1 and 11.2 from the record is `pytest_dfqs.clauses`'.

May import: `pytest_dfqs.model`, `pytest_dfqs.runtime`, `pytest_dfqs.modelfile`,
`pytest_dfqs.verdict`, `pytest_dfqs.catalogue`.
"""
