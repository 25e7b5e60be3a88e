"""Allure certification reports: labels from the clause catalogue, evidence as attachments.

Registered only when allure-pytest writes results (--alluredir), the way
allure-pytest registers its own listener: without it, nothing here runs and
allure is never imported. Every conformance test gets the epic "DFQS v1.0",
the spec section as feature, the clause id and words as story, a severity
from the level (SHALL critical, SHOULD normal, MAY minor), the model as a
parameter, and a description of what was checked and why it decides the
clause. Its finding's evidence, the model facts, and where present the routing
trace summary, the metrics record and the stability plot are attached; each
model's last test carries the model's certificate. At the end of the session
environment.properties, categories.json and the certificate go into the
results directory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pytest_dfqs.modelfile.header import HeaderError
from pytest_dfqs.safety.checks import SAFETY_CHECKS
from pytest_dfqs.session import Case, CertificationSession, ClaimCase, ModelResult, SafetyCase, case_of, claim_case_of, safety_case_of
from pytest_dfqs.verdict import Finding

from .certificate import build_certificate, to_json

SEVERITY = {"SHALL": "critical", "SHOULD": "normal", "MAY": "minor"}
CLAIMS_FEATURE = "claims"
SAFETY_FEATURE = "chat template safety"
CATEGORIES = [
    {"name": "Dangerous chat templates", "matchedStatuses": ["failed", "skipped"], "messageRegex": "(?s).*template-(code|renders).*"},
    {"name": "SHALL violations", "matchedStatuses": ["failed"], "messageRegex": "(?s).*NOT MET \\[.*"},
    {"name": "Checks that could not run", "matchedStatuses": ["failed", "broken"], "messageRegex": "(?s).*ERROR \\[.*"},
    {"name": "SHOULD warnings", "matchedStatuses": ["skipped"], "messageRegex": "(?s).*SHOULD (NOT MET|ERROR) \\(warning\\).*"},
    {"name": "Errors of the suite itself", "matchedStatuses": ["broken"]},
]
ROUTING_SUMMARY_KEYS = (
    "loads",
    "divergences_per_load",
    "agreement_per_layer",
    "token_rows_compared",
    "tolerated_ties",
    "rule",
    "dead_experts",
    "expert_load",
    "trace",
)


def allure_results_dir(config: pytest.Config) -> Path | None:
    directory = getattr(config.option, "allure_report_dir", None)
    return Path(directory).resolve() if directory else None


class AllureCertification:
    """The hooks that enrich allure-pytest's results with the DFQS catalogue."""

    def __init__(self, state: CertificationSession, results_dir: Path, finding_key: pytest.StashKey) -> None:
        self.state = state
        self.results_dir = results_dir
        self.finding_key = finding_key
        self.last_of_model: dict[str, int] = {}  # node id -> model index, for each model's last test

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        last: dict[int, str] = {}
        for item in items:
            case = case_of(item) or claim_case_of(item) or safety_case_of(item)
            if case is not None:
                last[case.model_index] = item.nodeid
        self.last_of_model = {nodeid: index for index, nodeid in last.items()}

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Iterator[None]:
        """The model's certificate goes with its last test, when all its findings are in."""
        index = self.last_of_model.get(item.nodeid)
        if index is not None:
            import allure

            certificate = build_certificate(self.state, [self.state.result(index)])
            _attach_json(allure, "certificate", certificate)
        return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Iterator[None]:
        case = case_of(item) or claim_case_of(item) or safety_case_of(item)
        if isinstance(case, ClaimCase):
            self._label_claim(case)
        elif isinstance(case, SafetyCase):
            self._label_safety(case)
        elif case is not None:
            self._label(case)
        try:
            return (yield)
        finally:
            finding = item.stash.get(self.finding_key, None)
            if case is not None and finding is not None:
                self._attach(case, finding)

    def _label(self, case: Case) -> None:
        import allure

        clause, check = case.clause, case.check
        allure.dynamic.epic(self.state.catalogue.spec)
        allure.dynamic.feature(self.state.catalogue.sections.get(clause.section, clause.section))
        allure.dynamic.story(f"{clause.id} {clause.text}")
        allure.dynamic.severity(SEVERITY[clause.level])
        allure.dynamic.label("dfqs_level", clause.level)
        allure.dynamic.label("dfqs_check", check.id)
        allure.dynamic.parameter("model", case.model_label)
        allure.dynamic.title(f"{clause.id} [{check.id}] {case.model_label}")
        allure.dynamic.description(
            f"**{clause.id} ({clause.level}{', reference profile' if clause.profile else ''})**: {clause.text}\n\n"
            f"Checked: {check.description} (tier {check.tier}).\n\n"
            f"Why it decides the clause: {clause.id} is MET when each of its checks "
            f"({', '.join(clause.checks)}) is met or not applicable; this is one of them."
        )

    def _label_claim(self, case: ClaimCase) -> None:
        """A claim's test: feature "claims", the claims file as story; it weighs on the verdict only under --dfqs-strict."""
        import allure

        claims_file, claim = case.claims_file, case.claim
        allure.dynamic.epic(self.state.catalogue.spec)
        allure.dynamic.feature(CLAIMS_FEATURE)
        allure.dynamic.story(f"{claims_file.name}: {claims_file.title}")
        allure.dynamic.severity("critical" if self.state.policy.claim_weight == "fail" else "trivial")
        allure.dynamic.label("dfqs_claim", case.key)
        allure.dynamic.label("dfqs_fact", claim.fact)
        allure.dynamic.parameter("model", case.model_label)
        allure.dynamic.title(f"{claim.id} [{claim.fact}] {case.model_label}")
        source = claims_file.source_text(claim) or "the claims file"
        allure.dynamic.description(
            f"**Claim {claim.id}** ({claims_file.path}): {claim.fact} = {claim.claimed}.\n\n"
            f"Claimed by {source}{f', {claim.where}' if claim.where else ''}.{f' Note: {claim.note}' if claim.note else ''}\n\n"
            f"Claims are checked against the file, never trusted; they decide the verdict only under --dfqs-strict."
        )

    def _label_safety(self, case: SafetyCase) -> None:
        """A safety check's test: feature "chat template safety"; it fails the run (not the verdict) unless --dfqs-safety=warn."""
        import allure

        allure.dynamic.epic(self.state.catalogue.spec)
        allure.dynamic.feature(SAFETY_FEATURE)
        allure.dynamic.story(case.check)
        allure.dynamic.severity("critical" if self.state.safety_policy == "fail" else "normal")
        allure.dynamic.label("dfqs_safety", case.check)
        allure.dynamic.parameter("model", case.model_label)
        allure.dynamic.title(f"{case.check} {case.model_label}")
        allure.dynamic.description(
            f"**{case.check}**: {SAFETY_CHECKS[case.check]}.\n\n"
            "The chat template is code the model file brings; it is read without running it and rendered only in a bounded"
            " sandbox process. Safety is not a DFQS clause: a dangerous template fails the run unless --dfqs-safety=warn."
        )

    def _attach(self, case: Case | ClaimCase | SafetyCase, finding: Finding) -> None:
        import allure

        model = self.state.models[case.model_index]
        _attach_json(
            allure, f"finding {finding.check}", {"status": finding.status.value, "summary": finding.summary, "evidence": finding.evidence}
        )
        try:
            _attach_json(allure, "model facts", model.facts().as_dict())
        except HeaderError:
            pass
        if finding.check == "routing-determinism" and finding.evidence:
            summary = {key: finding.evidence[key] for key in ROUTING_SUMMARY_KEYS if key in finding.evidence}
            _attach_json(allure, "routing trace summary", summary)
        if finding.check == "metrics-record":
            self._attach_files(allure, finding.evidence)
        plots = {"routing fidelity per layer": finding.evidence.get("fidelity") and finding.evidence.get("plot")}
        plots["routing under pressure"] = finding.evidence.get("routing_pressure_plot")
        for name, plot in plots.items():
            if plot:
                allure.attach.file(plot, name=name, attachment_type=allure.attachment_type.PNG)

    @staticmethod
    def _attach_files(allure: ModuleType, evidence: dict[str, Any]) -> None:
        if evidence.get("written_to"):
            allure.attach.file(evidence["written_to"], name="metrics record", attachment_type=allure.attachment_type.JSON)
        if evidence.get("plot"):
            allure.attach.file(evidence["plot"], name="context stability curve", attachment_type=allure.attachment_type.PNG)

    def write_session_files(self, results: list[ModelResult], certificate: dict[str, Any]) -> None:
        """environment.properties, categories.json, and the certificate beside the results."""
        self.results_dir.mkdir(parents=True, exist_ok=True)
        (self.results_dir / "environment.properties").write_text(environment_properties(results, certificate), encoding="utf-8")
        (self.results_dir / "categories.json").write_text(json.dumps(CATEGORIES, indent=2), encoding="utf-8")
        (self.results_dir / "dfqs-certificate.json").write_text(to_json(certificate), encoding="utf-8")


def _attach_json(allure: ModuleType, name: str, body: Any) -> None:
    allure.attach(to_json(body), name=name, attachment_type=allure.attachment_type.JSON)


def environment_properties(results: list[ModelResult], certificate: dict[str, Any]) -> str:
    """key=value lines: per model its file, digest, size, architecture; then tools, CPU and threads."""
    lines = []
    for number, model in enumerate(certificate["models"], start=1):
        prefix = "model" if len(results) == 1 else f"model.{number}"
        facts = model["facts"] or {}
        lines += [
            f"{prefix}.file={model['path']}",
            f"{prefix}.sha256={model['sha256'] or 'not computed (give --dfqs-sha256 or --dfqs-checksums)'}",
            f"{prefix}.size_bytes={model['file_size']}",
            f"{prefix}.architecture={facts.get('architecture')}",
            f"{prefix}.verdict={model['verdict']}",
            f"{prefix}.complete={str(model['complete']).lower()}",
        ]
    runtime = next((m["runtime"] for m in certificate["models"] if m["runtime"]), None) or {}
    tool = certificate["tool"]
    build = next(
        (
            f["evidence"]["system_info"]
            for m in certificate["models"]
            for c in m["clauses"]
            for f in c["findings"]
            if "system_info" in f["evidence"]
        ),
        "not loaded (tier static)",
    )
    lines += [
        f"dfqs.tier={certificate['settings']['tier']}",
        f"llama_cpp_python={tool.get('llama-cpp-python')}",
        f"llama_cpp_build={build}",
        f"pytest_dfqs={tool.get('pytest-dfqs')}",
        f"cpu={certificate['machine_info']['cpu']}",
        f"threads={runtime.get('threads')}",
    ]
    return "".join(f"{_escape(line)}\n" for line in lines)


def _escape(line: str) -> str:
    key, _, value = line.partition("=")
    return f"{key}={value.replace(chr(92), chr(92) * 2)}"
