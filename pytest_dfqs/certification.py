"""Certification hooks: per-model parametrization, findings, verdicts, outputs.

Registered by the plugin entry point only when --dfqs-model is given. Every
conformance test is parametrized per clause check and model; the findings
decide the clauses, the clauses the verdict, shown in the terminal and
written into the certificate.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Generator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from _pytest import junitxml

from .catalogue import CatalogueError, load_catalogue, tier_rank
from .claims.verify import verify_claim
from .clauses.artifact_integrity import check_unchanged
from .clauses.registry import finding as check_finding
from .clauses.registry import guarded
from .model import ModelUnderTest
from .reports import xdist_merge
from .reports.allure_report import AllureCertification, allure_results_dir
from .reports.certificate import build_certificate, write_certificate
from .reports.sarif import build_sarif, write_sarif
from .reports.terminal import (
    baseline_table,
    claims_table,
    clause_table,
    fidelity_table,
    model_header_lines,
    reasoning_table,
    safety_lines,
    settings_line,
)
from .runtime.host import busy_cores, threads_text, usable_cores
from .runtime.rpc import Placement
from .safety.checks import safety_finding
from .session import Case, CertificationSession, ClaimCase, ModelResult, SafetyCase, case_of, claim_case_of, overall, safety_case_of
from .settings import SETTINGS, Settings, judges_in_header
from .verdict import NEEDS_TIER, Finding, Policy, Status, Verdict
from .workplan import eta_line, plan_line

STATE = pytest.StashKey[CertificationSession]()
FINDING = pytest.StashKey[Finding]()
REPORT_ERROR = pytest.StashKey[str]()
ALLURE_PLUGIN = "dfqs-allure"
INTEGRITY_CLAUSE = "DFQS-AI.1"
SPEED_CHECK = ("DFQS-3.2", "cpu-generation")  # the first runtime check, which measures the model's speeds
CLAIMS_MODULE = "test_claims.py"  # the claims group's tests in the conformance suite
METRICS_CHECK = "metrics-record"  # the eval tier's record, which score and throughput claims read


def start(config: pytest.Config, settings: Settings, models: list[ModelUnderTest]) -> None:
    """Set up the session's policy and outputs for the models under test, from validated settings."""
    try:
        catalogue = load_catalogue()
    except CatalogueError as error:
        raise pytest.UsageError(f"the DFQS clause catalogue is malformed: {error}") from None
    policy = Policy(settings.tier, settings.strict, settings.profile)
    config.stash[STATE] = CertificationSession(catalogue, policy, models, _selection(config), settings.claims, settings.safety)
    _interrupt_on_sigterm(config)
    results_dir = allure_results_dir(config)
    if results_dir is not None:
        config.pluginmanager.register(AllureCertification(config.stash[STATE], results_dir, FINDING), ALLURE_PLUGIN)


def _interrupt_on_sigterm(config: pytest.Config) -> None:
    """SIGTERM ends the run as Ctrl-C does: the worker stopped, the certificate written, pytest's interrupted status."""
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    signal.signal(signal.SIGTERM, interrupt)
    config.add_cleanup(restore)


def _selection(config: pytest.Config) -> dict[str, Any]:
    """The test selection in force: -k, -m and the paths given."""
    option = config.option
    return {"keyword": option.keyword or "", "markers": option.markexpr or "", "args": [str(arg) for arg in config.args]}


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    state = config.stash.get(STATE, None)
    if state is None:
        return None
    lines = [settings_line(state.policy, state.catalogue.spec)]
    lines += _rootdir_note(config)
    lines += _placement_note(Placement(state.models[0].rpc, state.models[0].tensor_split) if state.models[0].rpc else None)
    if state.policy.tier != "static" and not state.models[0].rpc:
        lines += _busy_cores_note(state.models[0].threads)
    for model in state.models:
        lines += model_header_lines(model, judge=judges_in_header(config))
        if state.policy.tier != "static" and model.header_readable():
            lines.append(f"dfqs {plan_line(model, state.policy.tier)}")
    return lines


def _busy_cores_note(threads: int) -> list[str]:
    """A warning where other work leaves llama.cpp fewer free cores than it has threads: its threads wait for each
    other after every operation, so one sharing a core holds all of them up (beside one busy loop on 2 cores, a 2-thread
    SmolLM2 decode ran 3 times slower than at 1 thread, a four-sequence one more than 14 times slower than quiet)."""
    cores = usable_cores()
    busy = min(cores, round(busy_cores()))
    free = max(1, cores - busy)
    if threads <= free:
        return []
    return [
        f"dfqs: WARNING: other work keeps {busy} of {cores} cores busy now: llama.cpp's {threads_text(threads)} wait for each"
        f" other after every step, so the run can take several times longer; --dfqs-threads={free} avoids that"
    ]


def _placement_note(placement: Placement | None) -> list[str]:
    """Where the runtime puts the layers, and a warning for rpc-servers off this machine (RPC has no authentication)."""
    if placement is None:
        return []
    lines = [f"dfqs: rpc: {placement.describe()}"]
    remote = placement.remote_endpoints()
    if remote:
        lines.append(
            f"dfqs: WARNING: rpc-server {', '.join(remote)} is not on this machine: llama.cpp's RPC has no authentication"
            " (anyone who reaches the port can run graphs and read memory there); keep rpc-servers on a private network"
        )
    return lines


def _rootdir_note(config: pytest.Config) -> list[str]:
    """pytest takes its rootdir from path arguments, a model path given apart included."""
    invocation = config.invocation_params
    moved = config.rootpath != invocation.dir and "--dfqs-model" in invocation.args
    if not moved:
        return []
    return [
        f"dfqs: note: pytest chose rootdir {config.rootpath} because the model path was a separate argument;"
        f" write --dfqs-model=PATH to keep {invocation.dir} (its ini file and .pytest_cache)"
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    state = metafunc.config.stash.get(STATE, None)
    if state is None:
        return
    if "dfqs_case" in metafunc.fixturenames:
        cases = state.cases(metafunc.function.__name__)
        metafunc.parametrize("dfqs_case", cases, ids=[case.id for case in cases])
    elif "dfqs_claim_case" in metafunc.fixturenames:
        claims = state.claim_cases()
        metafunc.parametrize("dfqs_claim_case", claims, ids=[case.id for case in claims])
    elif "dfqs_safety_case" in metafunc.fixturenames:
        checks = state.safety_cases()
        metafunc.parametrize("dfqs_safety_case", checks, ids=[case.id for case in checks])


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Without claims files the claims group has nothing to test: its module is not collected."""
    state = config.stash.get(STATE, None)
    if state is not None and not state.claims_files and collection_path.name == CLAIMS_MODULE:
        return True
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The claims group runs after the clauses: a score claim reads the metrics the eval tier measured."""
    items.sort(key=lambda item: claim_case_of(item) is not None)


@pytest.fixture
def dfqs_finding(request: pytest.FixtureRequest, dfqs_case: Case) -> Finding:
    """The finding of this test's check on this test's model (computed once per model)."""
    state = request.config.stash[STATE]
    check = dfqs_case.check
    if tier_rank(check.tier) > tier_rank(state.policy.tier):
        finding = Finding(check.id, Status.NOT_EVALUATED, f"needs --dfqs-tier {check.tier}", {NEEDS_TIER: check.tier})
    else:
        finding = _evidence(request, state.models[dfqs_case.model_index], check.id, check.tier)
    request.node.stash[FINDING] = finding
    return finding


def _evidence(request: pytest.FixtureRequest, model: ModelUnderTest, check_id: str, tier: str) -> Finding:
    """A check's finding; the eval tier's first test lends pytest-benchmark's fixture to the throughput measurement."""
    if tier == "eval" and model.benchmark is None and model.header_readable() and _benchmark_usable(request.config):
        model.benchmark = request.getfixturevalue("benchmark")
    return check_finding(model, check_id)


@pytest.fixture
def dfqs_claim_finding(request: pytest.FixtureRequest, dfqs_claim_case: ClaimCase) -> Finding:
    """The finding of this test's claim on this test's model; a measured claim reads its check's evidence (metrics, fidelity)."""
    state = request.config.stash[STATE]
    model, claim = state.models[dfqs_claim_case.model_index], dfqs_claim_case.claim
    measured, unmeasured = None, None
    if claim.measured_by is not None and tier_rank(state.policy.tier) >= tier_rank(claim.tier):
        check = _evidence(request, model, claim.measured_by, claim.tier)
        measured = _measurement(model, claim.measured_by, check)
        unmeasured = None if measured else f"{claim.measured_by} measured nothing to compare with ({check.status.value}: {check.summary})"
    if unmeasured:
        finding = Finding(claim.id, Status.NOT_EVALUATED, unmeasured)
    else:
        finding = guarded(claim.id, model, lambda checked: verify_claim(claim, checked, measured))
    request.node.stash[FINDING] = finding
    return finding


@pytest.fixture
def dfqs_safety_finding(request: pytest.FixtureRequest, dfqs_safety_case: SafetyCase) -> Finding:
    """The finding of this test's safety check on this test's model's chat templates (assessed once per model)."""
    model, check = request.config.stash[STATE].models[dfqs_safety_case.model_index], dfqs_safety_case.check
    if model.header_readable():
        finding = guarded(check, model, lambda checked: safety_finding(check, checked.templates()))
    else:
        finding = Finding(check, Status.NOT_EVALUATED, "the header cannot be read, so neither can its chat template (see DFQS-3.1)")
    request.node.stash[FINDING] = finding
    return finding


def _measurement(model: ModelUnderTest, check_id: str, check: Finding) -> dict[str, Any] | None:
    """What a measured claim is compared with: the whole metrics record, or the fidelity figures; None when nothing was measured."""
    if check_id == METRICS_CHECK:
        record = model.metrics_record
        return record if record and not record.get("interrupted") else None
    return check.evidence if "mean_expert_overlap" in check.evidence else None


def _benchmark_usable(config: pytest.Config) -> bool:
    """pytest-benchmark is active and would not skip the test that asks for its fixture."""
    return config.pluginmanager.hasplugin("benchmark") and not config.getoption("benchmark_skip", False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    state = item.config.stash.get(STATE, None)
    case = case_of(item) or claim_case_of(item) or safety_case_of(item)
    if state is None or case is None or report.when == "teardown":
        return report
    if report.when == "setup":
        item.user_properties += _properties(case)
        if report.failed:
            reason = f"the test could not be set up: {call.excinfo.exconly() if call.excinfo else ''}"
            _record(item, report, case, item.stash.get(FINDING, None) or Finding(_check_id(case), Status.ERROR, reason))
    else:
        ended = Finding(_check_id(case), Status.ERROR, "the test ended without a finding")
        _record(item, report, case, item.stash.get(FINDING, None) or ended)
    return report


def _properties(case: Case | ClaimCase | SafetyCase) -> list[tuple[str, object]]:
    """JUnit properties of a test: its clause, level and check, its claim, or its safety check."""
    if isinstance(case, ClaimCase):
        return [("dfqs_claim", case.key), ("dfqs_fact", case.claim.fact)]
    if isinstance(case, SafetyCase):
        return [("dfqs_safety", case.check)]
    return [("dfqs_clause", case.clause.id), ("dfqs_level", case.clause.level), ("dfqs_check", case.check.id)]


def _check_id(case: Case | ClaimCase | SafetyCase) -> str:
    if isinstance(case, SafetyCase):
        return case.check
    return case.claim.id if isinstance(case, ClaimCase) else case.check.id


def _record(item: pytest.Item, report: pytest.TestReport, case: Case | ClaimCase | SafetyCase, finding: Finding) -> None:
    """Record the finding here; an xdist worker also sends it to the controller with the test's report."""
    state = item.config.stash[STATE]
    if isinstance(case, SafetyCase):
        state.add_safety(case.model_index, case.check, finding)
        _soften_safety(report, case, finding, state.safety_policy)
    elif isinstance(case, ClaimCase):
        state.add_claim(case.model_index, case.key, finding)
        _soften_claim(report, case, finding, state.policy)
    else:
        state.record(case, finding)
        _announce_speeds(state, case, finding)
        _soften(report, case, finding, state.policy)
    if hasattr(item.config, "workerinput"):
        setattr(report, xdist_merge.REPORT_ATTRIBUTE, xdist_merge.export(state, case, finding))


def _announce_speeds(state: CertificationSession, case: Case, finding: Finding) -> None:
    """Measured speeds: the time the rest of the plan needs."""
    if (case.clause.id, finding.check) == SPEED_CHECK and finding.status == Status.MET:
        model = state.models[case.model_index]
        model.announce(
            eta_line(model, state.policy.tier, finding.evidence["prompt_tokens_per_sec"], finding.evidence["decode_tokens_per_sec"])
        )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """On the xdist controller: a worker's report brings its finding (see xdist_merge)."""
    exported, node = getattr(report, xdist_merge.REPORT_ATTRIBUTE, None), getattr(report, "node", None)
    if not exported or node is None:
        return
    state = node.config.stash.get(STATE, None)
    if state is not None:
        xdist_merge.merge(state, node.gateway.id, exported)


def _soften(report: pytest.TestReport, case: Case, finding: Finding, policy: Policy) -> None:
    """A SHOULD, MAY or profile clause not met is a warning or information, not a failure."""
    weight = policy.weight(case.clause)
    if report.failed and finding.status in (Status.NOT_MET, Status.ERROR) and weight != "fail":
        label = "warning" if weight == "warn" else "informational"
        report.outcome = "skipped"
        report.wasxfail = f"{case.clause.id} {case.clause.level} {finding.status.value} ({label}): {finding.summary}"


def _soften_claim(report: pytest.TestReport, case: ClaimCase, finding: Finding, policy: Policy) -> None:
    """A claim not met is information, not a failure, unless --dfqs-strict makes claims decide."""
    if report.failed and finding.status in (Status.NOT_MET, Status.ERROR) and policy.claim_weight != "fail":
        report.outcome = "skipped"
        report.wasxfail = f"claim {case.key} {finding.status.value} (informational; --dfqs-strict decides on it): {finding.summary}"


def _soften_safety(report: pytest.TestReport, case: SafetyCase, finding: Finding, safety: str) -> None:
    """Under --dfqs-safety=warn a dangerous template is reported, not failed."""
    if report.failed and finding.status in (Status.NOT_MET, Status.ERROR) and safety == "warn":
        report.outcome = "skipped"
        report.wasxfail = f"safety {case.check} {finding.status.value} (--dfqs-safety=warn): {finding.summary}"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under pytest-xdist's load scheduling, all tests of one model go to one worker: one load per model."""
    state = config.stash.get(STATE, None)
    if state is None or config.getoption("dist") not in ("load", "loadgroup"):
        return None
    from .xdist_scheduling import ModelScopeScheduling

    return ModelScopeScheduling(config, log, [model.label for model in state.models])


def pytest_deselected(items: list[pytest.Item]) -> None:
    """Conformance tests that -k, -m or another plugin left out: part of the selection the certificate records."""
    for item in items:
        state, case = item.config.stash.get(STATE, None), case_of(item)
        if state is not None and case is not None:
            state.deselected.add((case.model_index, case.clause.id, case.check.id))


@pytest.hookimpl(tryfirst=True)  # before junitxml writes its file: the verdict goes into its properties
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    state = config.stash.get(STATE, None)
    settings = config.stash.get(SETTINGS, None)
    if state is None or settings is None:
        return
    for model in state.models:
        model.stop()  # each is closed when pytest ends (models_under_test)
    state.interrupted = exitstatus == pytest.ExitCode.INTERRUPTED or bool(session.shouldstop or session.shouldfail)
    if hasattr(config, "workerinput"):  # an xdist worker: its findings went with its reports, the controller writes the outputs
        return
    for index, model in enumerate(state.models):
        changed = check_unchanged(model)
        if changed is not None:
            state.add(index, INTEGRITY_CLAUSE, changed)
    results = state.results()
    _set_exit_status(session, results, settings)
    _junit_properties(config, results)
    allure = config.pluginmanager.get_plugin(ALLURE_PLUGIN)
    sarif = settings.sarif
    if sarif is not None:
        _write(session, f"the SARIF file to {sarif}", lambda: write_sarif(sarif, build_sarif(state, results)))
    if settings.report is None and allure is None:
        return
    try:
        certificate = build_certificate(state, results)
    except OSError as error:  # a model file that vanished during the run
        config.stash[REPORT_ERROR] = f"could not build the certificate: {error.strerror or error}"
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR if session.exitstatus == 0 else session.exitstatus
        return
    report = settings.report
    if report is not None:
        _write(session, f"the certificate to {report}", lambda: write_certificate(report, certificate))
    if allure is not None:
        _write(session, f"the Allure session files to {allure.results_dir}", lambda: allure.write_session_files(results, certificate))


def _set_exit_status(session: pytest.Session, results: list[ModelResult], settings: Settings) -> None:
    """NOT CONFORMANT fails the run, and so does a dangerous chat template unless --dfqs-safety=warn; INCOMPLETE does only
    under --dfqs-require-complete; an interrupt keeps its status."""
    if session.exitstatus != 0:
        return
    verdicts = [r.verdict for r in results]
    dangerous = settings.safety == "fail" and any(r.dangerous for r in results)
    if dangerous or Verdict.NOT_CONFORMANT in verdicts or (settings.require_complete and Verdict.INCOMPLETE in verdicts):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _junit_properties(config: pytest.Config, results: list[ModelResult]) -> None:
    """The verdict as testsuite properties of --junitxml, the same words as the terminal and the certificate."""
    xml = config.stash.get(junitxml.xml_key, None)
    if xml is None:
        return
    xml.add_global_property("dfqs_verdict", overall(results).value)
    xml.add_global_property("dfqs_complete", str(all(r.complete for r in results)).lower())
    xml.add_global_property("dfqs_safety", "dangerous" if any(r.dangerous for r in results) else "nothing found")
    for result in results:
        xml.add_global_property(f"dfqs_verdict:{result.model.label}", result.verdict.value)


def _write(session: pytest.Session, what: str, action: Callable[[], None]) -> None:
    """A file the run promised: failing to write it ends the run with exit 3 and says why."""
    try:
        action()
    except OSError as error:
        session.config.stash[REPORT_ERROR] = f"could not write {what}: {error.strerror or error}"
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR if session.exitstatus == 0 else session.exitstatus


def _evidence_width(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> int | None:
    """A terminal's width for the clause table's evidence; None (the whole text) under -v and where nobody reads a
    terminal (a CI log, a pipe), which keeps every line."""
    return config.get_terminal_writer().fullwidth if terminalreporter.isatty() and config.option.verbose <= 0 else None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None or config.option.collectonly:
        return
    width = _evidence_width(terminalreporter, config)
    for result in state.results():
        terminalreporter.write_sep("=", f"{state.catalogue.spec} certification: {result.model.label}")
        for text, markup in clause_table(result, state.policy.tier, width) + safety_lines(result, state.safety_policy):
            terminalreporter.write_line(text, **markup)
        for text in baseline_table(result):
            terminalreporter.write_line(text)
        for text in fidelity_table(result) + reasoning_table(result):
            terminalreporter.write_line(text)
        for text, markup in claims_table(result, state.policy, width):
            terminalreporter.write_line(text, **markup)
    settings = config.stash[SETTINGS]
    if REPORT_ERROR in config.stash:
        terminalreporter.write_line(f"dfqs: {config.stash[REPORT_ERROR]}", red=True, bold=True)
    elif settings.report is not None:
        terminalreporter.write_line(f"dfqs: certificate written to {settings.report}")
    if settings.sarif is not None and REPORT_ERROR not in config.stash:
        terminalreporter.write_line(f"dfqs: SARIF written to {settings.sarif}")
