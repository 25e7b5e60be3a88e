"""What the plugin prints: the model facts header and the clause table."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pytest_dfqs.clauses.registry import finding
from pytest_dfqs.model import ModelUnderTest
from pytest_dfqs.modelfile.facts import ModelFacts
from pytest_dfqs.modelfile.header import HeaderError
from pytest_dfqs.modelfile.units import human_bytes, human_count, human_gib
from pytest_dfqs.session import ClaimResult, ModelResult, SafetyResult
from pytest_dfqs.verdict import SEE, ClauseResult, Finding, Policy, Status, Verdict

STATUS_MARKUP = {
    Status.MET: {"green": True},
    Status.NOT_MET: {"red": True, "bold": True},
    Status.ERROR: {"red": True, "bold": True},
    Status.NOT_APPLICABLE: {},
    Status.NOT_EVALUATED: {"yellow": True},
}
CLAUSE_COLUMNS = 35  # clause, level and status before a clause line's evidence
FEWEST_COLUMNS = 40  # the evidence keeps at least this many on a narrow terminal
SAFETY_WIDTH = 200  # a safety line names the first construct and its line whole
JUDGE_CHECK = "llama-cpp-loads"  # llama.cpp's verdict on the header, with its memory plan
REFUSAL = "llama.cpp refuses to load this model: "  # how a refusal's finding begins (runtime.client)
CLAIM_WIDTH = 30
CLAIM_COLUMNS = 2 + CLAIM_WIDTH + 16  # indent, claim and status before a claim line's evidence
METRICS_CLAUSE = "DFQS-11.1"  # the evaluation interface: report the five metrics
VERDICT_COLOURS = {
    Verdict.CONFORMANT: "green",
    Verdict.CONFORMANT_WITH_WARNINGS: "yellow",
    Verdict.INCOMPLETE: "yellow",
    Verdict.NOT_CONFORMANT: "red",
}


def settings_line(policy: Policy, spec: str) -> str:
    profile = policy.profile or "none (profile clauses informational)"
    return f"dfqs: {spec}, tier {policy.tier}, strict {'on' if policy.strict else 'off'}, profile {profile}"


def model_header_lines(model: ModelUnderTest, judge: bool = True) -> list[str]:
    """The facts block shown before the tests run, with llama.cpp's verdict and memory plan (`judge`); a bad header shows its error."""
    lines = [f"dfqs model: {model.label} ({model.origin.url if model.origin else model.path})"]
    if model.origin is not None:
        lines.append(f"  {model.origin.line()}")
    try:
        facts = model.facts()
    except HeaderError as error:
        return lines + [f"  invalid GGUF header: {error}"]
    judged = [judge_line(finding(model, JUDGE_CHECK))] if judge else []
    return lines + [f"  {line}" for line in facts_lines(facts) + judged]


def judge_line(judged: Finding) -> str:
    """What llama.cpp said of the header before a weight was read: its memory plan, its refusal, or why it could not judge."""
    plan = judged.evidence.get("memory_plan")
    if judged.status == Status.MET and plan:
        needs, available = plan["needs_bytes"], plan["available_bytes"]
        rest = needs - plan["weights_bytes"] - plan["cache_bytes"] - plan["compute_bytes"]
        fits = "it fits" if not plan.get("shortfalls", []) and needs <= available else "it does not fit"
        nodes = "".join(f", node {node['endpoint']} {memory(node['needs_bytes'])}" for node in plan.get("nodes", []))
        return (
            f"llama.cpp, no weight read: at a {plan['ctx']:,}-token context it needs about {memory(needs)}{' here' if nodes else ''}"
            f" (weights {memory(plan['weights_bytes'])}, caches {memory(plan['cache_bytes'])}, compute {memory(plan['compute_bytes'])},"
            f" logits, metadata and margin {memory(rest)}){nodes}; this machine has {memory(available)} available: {fits}"
        )
    if judged.status == Status.NOT_MET:
        return f"llama.cpp, no weight read: it refuses this file: {judged.summary.splitlines()[0].removeprefix(REFUSAL)}"
    return judged.summary.splitlines()[0]


def memory(value: int) -> str:
    """A memory size in binary units, MiB below a GiB (tiny models need a few)."""
    return human_gib(value) if value >= 1 << 30 else f"{value / (1 << 20):.1f} MiB"


def facts_lines(facts: ModelFacts) -> list[str]:
    experts = (
        f"experts {facts.expert_count} ({facts.expert_used_count} used per token, {facts.expert_shared_count or 0} shared)"
        if facts.is_moe
        else "dense (no routed experts)"
    )
    dtypes = ", ".join(f"{name} {share.tensors} tensors {human_bytes(share.bytes)}" for name, share in facts.dtypes.items())
    return [
        f"{facts.name or 'unnamed'}: architecture {facts.architecture}, {facts.block_count} blocks, context {facts.context_length:,}"
        if facts.context_length
        else f"architecture {facts.architecture}",
        f"{experts}; parameters {human_count(facts.total_parameters)} total, {human_count(facts.active_parameters)} active per token",
        f"{facts.tensor_count} tensors, {human_bytes(facts.file_size)}, GGUF v{facts.gguf_version}; dtypes: {dtypes}",
    ]


def clause_table(result: ModelResult, tier: str, width: int | None) -> list[tuple[str, dict]]:
    """(text, markup) lines: one per clause, then the verdict line. Each evidence fits a terminal of `width` columns;
    None keeps it whole (-v)."""
    evidence = None if width is None else max(width - CLAUSE_COLUMNS, FEWEST_COLUMNS)
    lines = [(f"{'clause':<11}{'level':<8}{'status':<16}evidence", {"bold": True})]
    first_said: dict[str, str] = {}  # a NOT MET reason -> the clause that gave it first
    for clause in result.clauses:
        said = first_said.setdefault(clause.reason, clause.clause.id) if _repeatable(clause) else clause.clause.id
        lines.append((_clause_line(clause, evidence, said), STATUS_MARKUP[clause.status]))
    counts = _counts(result.clauses)
    verdict_markup = {VERDICT_COLOURS[result.verdict]: True, "bold": True}
    interrupted = ", interrupted" if result.interrupted else ""
    lines.append((f"verdict: {result.verdict.value} at tier {tier} ({counts}){interrupted}{_thresholds(result)}", verdict_markup))
    if result.undecided or result.undecided_claims:
        lines.append((f"undecided: {_undecided(result, evidence)}", {"yellow": True}))
    return lines


def _repeatable(clause: ClauseResult) -> bool:
    """A NOT MET clause whose reason another clause may have given already; a reason that refers (SEE) is left as is."""
    failing = next((f for f in clause.findings if f.status == Status.NOT_MET), None)
    return failing is not None and clause.status == Status.NOT_MET and SEE not in failing.evidence


def _thresholds(result: ModelResult) -> str:
    """DFQS-11.1 asks for the metrics, not for values: a MET evaluation interface says its scores were not judged."""
    reported = any(r.clause.id == METRICS_CLAUSE and r.status == Status.MET for r in result.clauses)
    return "; section 11's metrics are reported without thresholds (DFQS-11.1 sets none)" if reported else ""


def _undecided(result: ModelResult, width: int | None) -> str:
    """The undecided deciding clauses, grouped by why: "DFQS-3.2, DFQS-3.3 (tier runtime not run); ..."."""
    by_reason: dict[str, list[str]] = {}
    for clause in result.undecided:
        by_reason.setdefault(_shortened((clause.undecided or "").splitlines()[0], width), []).append(clause.clause.id)
    for claim in result.undecided_claims:
        by_reason.setdefault(_shortened(claim.finding.summary.splitlines()[0], width), []).append(f"claim {claim.case.key}")
    return "; ".join(f"{', '.join(ids)} ({reason})" for reason, ids in by_reason.items())


def _clause_line(result: ClauseResult, width: int | None, said: str) -> str:
    """A clause's row; a NOT MET reason `said` first by another clause refers to it instead of saying it again."""
    level = result.clause.level if result.weight != "info" or result.clause.profile is None else "info"
    if said != result.clause.id:
        reason = f"see {said} above (the same finding)"
    else:
        reason = _shortened(result.reason.splitlines()[0], width) if result.reason else ""
    return f"{result.clause.id:<11}{level:<8}{result.status.value:<16}{reason}"


def _shortened(text: str, width: int | None) -> str:
    """`text` cut to `width` characters, "..." marking the cut; None: whole."""
    return text[: width - 3] + "..." if width is not None and len(text) > width else text


def _counts(results: tuple[ClauseResult, ...]) -> str:
    """Status counts of the deciding clauses, then of the informational ones."""
    deciding = _count_statuses(r for r in results if r.weight != "info")
    informational = _count_statuses(r for r in results if r.weight == "info")
    return deciding + (f"; informational: {informational}" if informational else "")


def _count_statuses(results: Iterable[ClauseResult | Finding]) -> str:
    statuses = [r.status for r in results]
    return ", ".join(f"{statuses.count(s)} {s.value.lower()}" for s in Status if statuses.count(s))


def _finding_evidence(result: ModelResult, key: str) -> dict[str, Any] | None:
    """The evidence of the first finding of the model that holds `key`."""
    return next((f.evidence for c in result.clauses for f in c.findings if key in f.evidence), None)


def _evidence_of(result: ModelResult, key: str) -> Any:
    """The value of `key` in the first finding's evidence that holds it; None when none does."""
    evidence = _finding_evidence(result, key)
    return evidence[key] if evidence is not None else None


def baseline_table(result: ModelResult) -> list[str]:
    """The metrics beside the baseline's, when DFQS-11.2 compared identical conditions."""
    rows = _evidence_of(result, "side_by_side")
    if not rows:
        return []
    lines = [f"{'metric':<30}{'model':>14}{'baseline':>14}{'delta':>14}"]
    lines += [f"{r['metric']:<30}{r['model']:>14.4g}{r['baseline']:>14.4g}{r['delta']:>+14.4g}" for r in rows]
    return lines


def fidelity_table(result: ModelResult) -> list[str]:
    """The model against --dfqs-reference-model: next-token figures, then expert agreement per MoE layer."""
    found = _finding_evidence(result, "fidelity")
    if found is None:
        return []
    figures, kl = found["fidelity"], found["fidelity"]["kl"]
    lines = [
        f"fidelity against {Path(found['reference']).name}: KL mean {kl['mean']:.4f}, median {kl['median']:.4f}, p99 {kl['p99']:.4f},"
        f" max {kl['max']:.4f}; same top token {figures['same_top_token']:.3f} over {figures['positions']:,} positions"
        f" (top-{figures['top_k']}, reference tail mass mean {figures['reference_tail_mass']['mean']:.3f}: the KL is a lower bound)"
    ]
    if figures["experts_per_layer"]:
        lines.append(f"{'MoE layer':<12}{'overlap':>10}{'top-1':>10}{'weighted':>10}")
        rows = sorted(figures["experts_per_layer"].items(), key=lambda item: int(item[0]))
        lines += [f"{layer:<12}{row['overlap']:>10.3f}{row['top1']:>10.3f}{row['weighted']:>10.3f}" for layer, row in rows]
    return lines


def reasoning_table(result: ModelResult) -> list[str]:
    """reasoning_score by kind, each beside its chance level: where the interval does not leave chance, it says nothing."""
    kinds = _evidence_of(result, "reasoning_per_kind")
    if not kinds:
        return []
    lines = [f"{'reasoning by kind':<20}{'items':>7}{'score':>8}{'95% interval':>16}{'chance':>9}"]
    for kind, row in kinds.items():
        low, high = row["wilson_95"]
        verdict = "" if row["above_chance"] else "  (not above chance)"
        lines.append(f"{kind:<20}{row['items']:>7}{row['score']:>8.3f}{f'{low:.3f}-{high:.3f}':>16}{row['chance']:>9.3f}{verdict}")
    replies = _evidence_of(result, "replies")
    return lines + (_replies_lines(replies) if replies else [])


def _replies_lines(replies: dict[str, Any]) -> list[str]:
    """The prompt mode and how many replies missed the asked format, why, and how many the token budget cut."""
    reasoning, code = replies["reasoning"], replies["code"]
    reasons = ", ".join(f"{reason} {count}" for reason, count in reasoning["format_failure_reasons"].items() if count)
    return [
        f"asked {replies['mode']}: {reasoning['format_failures']} of {reasoning['items']} replies without an `Answer:` line"
        f"{f' ({reasons})' if reasons else ''}, {reasoning['off_type_answers']} answers of another type than asked,"
        f" {reasoning['budget_hits']} cut by the token budget; HumanEval: {code['format_failures']} of {code['problems']}"
        f" replies without code, {code['budget_hits']} cut by the token budget"
    ]


def claims_table(result: ModelResult, policy: Policy, width: int | None) -> list[tuple[str, dict]]:
    """(text, markup) lines: per claims file a heading and one line per claim, then the counts and what they weigh."""
    if not result.claims:
        return []
    evidence = None if width is None else max(width - CLAIM_COLUMNS, FEWEST_COLUMNS)
    lines: list[tuple[str, dict]] = []
    for claims_file, claims in _by_file(result.claims).items():
        lines.append((f"claims of {claims_file}", {"bold": True}))
        lines += [(_claim_line(claim, evidence), STATUS_MARKUP[claim.finding.status]) for claim in claims]
    weighs = "they decide the verdict (--dfqs-strict)" if policy.strict else "informational; --dfqs-strict makes them decide the verdict"
    lines.append((f"claims: {_count_statuses(c.finding for c in result.claims)} ({weighs})", {"bold": True}))
    return lines


def _by_file(claims: tuple[ClaimResult, ...]) -> dict[str, list[ClaimResult]]:
    grouped: dict[str, list[ClaimResult]] = {}
    for claim in claims:
        claims_file = claim.case.claims_file
        grouped.setdefault(f"{claims_file.name}: {claims_file.title}", []).append(claim)
    return grouped


def _claim_line(result: ClaimResult, width: int | None) -> str:
    claim_id = result.case.claim.id
    claim_id = claim_id if len(claim_id) < CLAIM_WIDTH else claim_id[: CLAIM_WIDTH - 4] + "... "
    return f"  {claim_id:<{CLAIM_WIDTH}}{result.finding.status.value:<16}{_shortened(result.finding.summary.splitlines()[0], width)}"


def safety_lines(result: ModelResult, safety: str) -> list[tuple[str, dict]]:
    """Under the verdict line: what the safety group found in the chat templates (not part of the DFQS verdict)."""
    checks = result.safety
    if not checks:
        return []
    if all(r.finding.status == Status.NOT_APPLICABLE for r in checks):
        return [("safety: no chat template to check", {})]
    if all(r.finding.status in (Status.MET, Status.NOT_APPLICABLE) for r in checks):
        return [(f"safety: nothing dangerous: {_shortened(checks[0].finding.summary.splitlines()[0], SAFETY_WIDTH)}", {"green": True})]
    lines = [(_safety_line(r), STATUS_MARKUP[r.finding.status]) for r in checks if r.finding.status != Status.MET]
    if result.dangerous:
        consequence = (
            "the run fails (exit 1); --dfqs-safety=warn reports it only" if safety == "fail" else "reported only (--dfqs-safety=warn)"
        )
        lines.append((f"safety: the chat template is dangerous: {consequence}", {"red": True, "bold": True}))
    return lines


def _safety_line(result: SafetyResult) -> str:
    what = "DANGEROUS" if result.dangerous else result.finding.status.value
    return f"safety: {result.check} {what}: {_shortened(result.finding.summary.splitlines()[0], SAFETY_WIDTH)}"
