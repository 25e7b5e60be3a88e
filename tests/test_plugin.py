"""The plugin as a user meets it: options, usage errors, collection, outputs."""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
import sys
from collections import Counter
from pathlib import Path
from xml.etree import ElementTree

import pytest

from pytest_dfqs import plugin
from pytest_dfqs.catalogue import load_catalogue
from pytest_dfqs.runtime.client import SpareWorkers
from pytest_dfqs.safety.checks import SAFETY_CHECKS

from .conftest import Certification, SharedRun, validate_certificate

FILE_SIZE_LIMIT = 4096  # bytes: more than pytest and the plugin write before the certificate, less than the certificate


def test_without_a_model_the_plugin_adds_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_own="def test_own(): assert True")
    result = pytester.runpytest_subprocess("-v")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*test_own.py::test_own PASSED*", "*1 passed*"])
    # the interpreter's path (platform line) and the plugin list name the project wherever it is cloned; nothing else may
    shown = [line for line in result.stdout.lines if not line.startswith(("platform ", "plugins: "))]
    assert [line for line in shown if "dfqs" in line.lower()] == []


def test_help_lists_the_dfqs_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["DFQS v1.0 model certification:", "*--dfqs-model=PATH*"])
    for option in ("--dfqs-tier", "--dfqs-strict", "--dfqs-profile", "--dfqs-sha256", "--dfqs-checksums", "--dfqs-report"):
        assert option in result.stdout.str()
    for ini in ("dfqs_tier", "dfqs_strict", "dfqs_profile", "dfqs_checksums", "dfqs_report"):
        assert ini in result.stdout.str()


def test_collects_the_whole_suite_from_an_empty_directory(certify: Certification, moe_model: Path) -> None:
    result = certify.run(f"--dfqs-model={moe_model}", "--collect-only", "-q")
    catalogue = load_catalogue()
    expected = sum(len(clause.checks) for clause in catalogue.clauses) + len(SAFETY_CHECKS)  # and the safety group
    result.stdout.fnmatch_lines([f"{expected} tests collected*"])


def test_every_test_is_parametrized_per_model(certify: Certification, moe_model: Path, dense_model: Path) -> None:
    result = certify.run(f"--dfqs-model={moe_model}", f"--dfqs-model={dense_model}", "-v")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "*test_single_file[[]DFQS-3.1-gguf-header-tiny-moe.gguf[]] PASSED*",
            "*test_single_file[[]DFQS-3.1-gguf-header-tiny-dense.gguf[]] PASSED*",
        ]
    )
    certificate = certify.certificate()
    validate_certificate(certificate)
    assert [m["file_name"] for m in certificate["models"]] == ["tiny-moe.gguf", "tiny-dense.gguf"]


def test_report_header_shows_model_facts(moe_static: SharedRun) -> None:
    result = moe_static.result
    result.stdout.fnmatch_lines(
        [
            "dfqs: DFQS v1.0, tier static, strict off, profile none*",
            "dfqs model: tiny-moe.gguf*",
            "  dfqs-demo-moe: architecture llama, 2 blocks, context 131,072",
            "  experts 4 (2 used per token, 0 shared); parameters *K total, *K active per token",
            "  23 tensors, *, GGUF v3; dtypes: f16 16 tensors *, f32 7 tensors *",
        ]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dfqs-model", "missing.gguf"], "ERROR: --dfqs-model: missing.gguf does not exist"),
        (["--dfqs-model", "."], "ERROR: --dfqs-model: . is a directory; give the path of a file"),
        (["--dfqs-model", "pipe.gguf"], "ERROR: --dfqs-model: pipe.gguf is not a regular file*"),
        (["--dfqs-tier", "full"], "ERROR: --dfqs-tier: 'full' is not one of static, runtime, eval"),
        (["--dfqs-profile", "mini"], "ERROR: --dfqs-profile: 'mini' is not one of reference"),
        (["--dfqs-sha256", "abc123"], "ERROR: --dfqs-sha256: 'abc123' is not a SHA-256 digest (64 hexadecimal digits)"),
        (["--dfqs-checksums", "sums.txt"], "ERROR: --dfqs-checksums: sums.txt:2: expected '<64 hex digits>  <file name>'*"),
        (["--dfqs-report", "no/such/dir/cert.json"], "ERROR: --dfqs-report: the folder no/such/dir does not exist"),
        (["--dfqs-request-timeout", "0"], "ERROR: --dfqs-request-timeout: 0 is outside 1..604800"),
        (["--dfqs-report", "/proc/cert.json"], "ERROR: --dfqs-report: cannot write into /proc (*); give a path in a writable folder"),
        (["--dfqs-metrics", "/proc/metrics.json"], "ERROR: --dfqs-metrics: cannot write into /proc (*); give a path in a writable folder"),
        (["--alluredir", "/proc/allure"], "ERROR: --alluredir: cannot write into /proc/allure (*); give a writable folder"),
        (["--dfqs-report", "c" * 300 + ".json"], f"ERROR: --dfqs-report: {'c' * 300}.json: File name too long"),
        (["--dfqs-model", "m" * 300 + ".gguf"], f"ERROR: --dfqs-model: {'m' * 300}.gguf: File name too long"),
        (["--alluredir", "a" * 300], f"ERROR: --alluredir: {'a' * 300}: File name too long"),
    ],
)
def test_bad_option_values_are_usage_errors(pytester: pytest.Pytester, moe_model: Path, args: list[str], message: str) -> None:
    """Checked in this process (pytest's own path: options parsed, the plugin's checks, pytest's message and exit status)."""
    pytester.path.joinpath("sums.txt").write_text("0" * 64 + "  ok.gguf\nnot a checksum line\n")
    os.mkfifo(pytester.path / "pipe.gguf")
    model = [] if args[0] == "--dfqs-model" else [f"--dfqs-model={moe_model}"]
    result = pytester.runpytest_inprocess(*model, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()


def test_a_usage_error_ends_a_real_run_in_one_line(pytester: pytest.Pytester, moe_model: Path) -> None:
    """The cases above end to end once, in a pytest of its own: one line on stderr, exit 4, nothing else run."""
    result = pytester.runpytest_subprocess(f"--dfqs-model={moe_model}", "--dfqs-tier", "full")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.str().strip() == "ERROR: --dfqs-tier: 'full' is not one of static, runtime, eval"
    assert "Traceback" not in result.stderr.str() and result.stdout.str().strip() == ""


def test_a_usage_error_starts_no_llama_cpp_worker(pytester: pytest.Pytester, moe_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The options are checked before the spare llama.cpp worker is started: a run that would not begin starts none; a
    run that begins starts one per model (counted where the plugin starts them)."""
    started: list[int] = []

    def counted(count: int) -> SpareWorkers:
        started.append(count)
        return SpareWorkers(count)

    monkeypatch.setattr(plugin, "SpareWorkers", counted)
    assert pytester.runpytest_inprocess(f"--dfqs-model={moe_model}", "--dfqs-tier=full").ret == pytest.ExitCode.USAGE_ERROR
    assert started == []
    assert pytester.runpytest_inprocess(f"--dfqs-model={moe_model}", "-k", "gguf-header").ret == 0
    assert started == [1]


def test_outputs_never_overwrite_the_model(pytester: pytest.Pytester, moe_model: Path) -> None:
    before = moe_model.read_bytes()
    for option in ("--dfqs-report", "--dfqs-metrics"):
        result = pytester.runpytest_inprocess(f"--dfqs-model={moe_model}", f"{option}={moe_model}")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"ERROR: {option}: * is one of the files being read; give another path for the output"])
    assert moe_model.read_bytes() == before


def test_a_bad_ini_truth_value_names_the_option(pytester: pytest.Pytester, moe_model: Path) -> None:
    pytester.makeini("[pytest]\ndfqs_strict = maybe\n")
    result = pytester.runpytest_inprocess(f"--dfqs-model={moe_model}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: ini option dfqs_strict: *maybe*"])


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_model_is_a_usage_error(pytester: pytest.Pytester, moe_model: Path) -> None:
    locked = pytester.path / "locked.gguf"
    locked.write_bytes(moe_model.read_bytes())
    locked.chmod(0)
    result = pytester.runpytest_inprocess(f"--dfqs-model={locked}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --dfqs-model: * is not readable*"])


def test_ini_twins_and_precedence(pytester: pytest.Pytester, moe_model: Path) -> None:
    pytester.makeini("[pytest]\ndfqs_tier = eval\ndfqs_profile = reference\n")
    # `--dfqs-model=PATH`: a separate path argument would move pytest's rootdir (and ini file) to a common ancestor
    from_ini = pytester.runpytest_inprocess(f"--dfqs-model={moe_model}", "--collect-only")
    from_ini.stdout.fnmatch_lines(["dfqs: DFQS v1.0, tier eval, strict off, profile reference"])
    from_cli = pytester.runpytest_inprocess(f"--dfqs-model={moe_model}", "--dfqs-tier", "static", "--collect-only")
    from_cli.stdout.fnmatch_lines(["dfqs: DFQS v1.0, tier static, strict off, profile reference"])
    pytester.makeini("[pytest]\ndfqs_tier = fast\n")
    bad = pytester.runpytest_inprocess(f"--dfqs-model={moe_model}")
    bad.stderr.fnmatch_lines(["ERROR: ini option dfqs_tier: 'fast' is not one of static, runtime, eval"])


def test_certificate_of_a_conformant_model(moe_static: SharedRun) -> None:
    certify = moe_static
    assert certify.result.ret == 0
    certificate = certify.certificate()
    validate_certificate(certificate)
    model = certificate["models"][0]
    assert certificate["verdict"] == model["verdict"] == "INCOMPLETE"  # the static tier cannot decide DFQS-3.2, 3.3, 11.1, 11.2
    assert not certificate["complete"] and not certificate["interrupted"] and not model["complete"]
    assert [u["clause"] for u in model["undecided"]] == ["DFQS-3.2", "DFQS-3.3", "DFQS-11.1", "DFQS-11.2"]
    decided = {c["id"]: c["decided_at_tier"] for c in model["clauses"]}
    assert decided["DFQS-3.1"] == "static" and decided["DFQS-3.2"] is None
    assert model["facts"]["expert_count"] == 4 and model["facts"]["tensor_count"] == 23
    assert model["sha256"] is None  # no digest was asked for: the static tier reads no data
    assert {c["id"] for c in model["clauses"]} == {c.id for c in load_catalogue().clauses}


def test_certificate_of_a_broken_model(certify: Certification, tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 40)
    assert certify.run(f"--dfqs-model={broken}").ret == 1
    certificate = certify.certificate()
    validate_certificate(certificate)
    assert certificate["verdict"] == "NOT CONFORMANT" and certificate["models"][0]["facts"] is None


def test_dense_model_under_the_reference_profile(certify: Certification, dense_model: Path) -> None:
    informational = certify.run(f"--dfqs-model={dense_model}")
    assert informational.ret == 0
    informational.stdout.fnmatch_lines(["DFQS-5.1   info    NOT MET *not a Mixture-of-Experts*", "verdict: INCOMPLETE at tier static*"])
    assert certify.clause("DFQS-3.3")["status"] == "NOT APPLICABLE"
    profiled = certify.run(f"--dfqs-model={dense_model}", "--dfqs-profile", "reference")
    assert profiled.ret == 1
    profiled.stdout.fnmatch_lines(["DFQS-5.1   SHALL   NOT MET *not a Mixture-of-Experts*", "verdict: NOT CONFORMANT at tier static*"])


def test_checksum_mismatch_shows_both_digests(certify: Certification, moe_model: Path) -> None:
    actual = hashlib.sha256(moe_model.read_bytes()).hexdigest()
    wrong = "0" * 64
    result = certify.run(f"--dfqs-model={moe_model}", "--dfqs-sha256", wrong)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["DFQS-AI.1  SHALL   NOT MET *SHA-256 mismatch*"])
    reason = certify.clause("DFQS-AI.1")["reason"]
    assert wrong in reason and actual in reason


def test_checksums_file_and_cached_digest(certify: Certification, moe_model: Path, pytester: pytest.Pytester) -> None:
    sums = pytester.path / "checksums.txt"
    sums.write_text(f"{hashlib.sha256(moe_model.read_bytes()).hexdigest()}  {moe_model.name}\n")
    first = certify.run(f"--dfqs-model={moe_model}", "--dfqs-checksums", str(sums))
    assert first.ret == 0
    evidence = certify.clause("DFQS-AI.1")["findings"][0]["evidence"]
    assert evidence["cached"] is False and evidence["bytes_read"] == moe_model.stat().st_size
    assert certify.certificate()["models"][0]["sha256"] == evidence["actual"]
    assert certify.run(f"--dfqs-model={moe_model}", "--dfqs-checksums", str(sums)).ret == 0
    evidence = certify.clause("DFQS-AI.1")["findings"][0]["evidence"]
    assert evidence["cached"] is True and evidence["bytes_read"] == 0


def test_demo_model_is_generated_once(certify: Certification, pytester: pytest.Pytester) -> None:
    result = certify.run("--dfqs-model", "demo")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["verdict: INCOMPLETE at tier static*"])
    demo = Path(certify.certificate()["models"][0]["path"])
    assert demo.is_relative_to(pytester.path / ".pytest_cache")
    stamp = demo.stat().st_mtime_ns
    assert certify.run("--dfqs-model", "demo").ret == 0
    assert demo.stat().st_mtime_ns == stamp


def test_without_pytests_cache_the_demo_is_written_in_this_users_own_folder(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Never in a folder of the temporary directory another user made (a file planted there would pass for the demo)."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    result = pytester.runpytest_subprocess("--dfqs-model=demo", "-p", "no:cacheprovider")
    assert result.ret == 0
    mine = tmp_path / f"pytest-dfqs-of-{os.getuid()}"
    assert (mine / "dfqs-demo" / "v4" / "dfqs-demo-moe.gguf").is_file() and mine.stat().st_mode & 0o777 == 0o700
    mine.chmod(0o777)
    refused = pytester.runpytest_subprocess("--dfqs-model=demo", "-p", "no:cacheprovider")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    why = "is not this user's own folder (a link, another owner, or writable by others): remove it"
    assert refused.stderr.str().strip() == f"ERROR: {mine} {why}"


def test_a_demo_folder_it_cannot_write_is_a_usage_error(pytester: pytest.Pytester) -> None:
    blocked = pytester.path / ".pytest_cache" / "d" / "dfqs-demo" / "v4"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where the demo's folder goes")
    result = pytester.runpytest_inprocess("--dfqs-model=demo")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    why = f"cannot write it into {blocked.parent} (File exists)"
    assert result.stderr.str().strip() == f"ERROR: --dfqs-model demo: {why}: make it a folder you can write"


def test_a_separate_model_path_explains_the_moved_rootdir(pytester: pytest.Pytester, moe_model: Path) -> None:
    result = pytester.runpytest_inprocess("--dfqs-model", str(moe_model), "--collect-only")
    result.stdout.fnmatch_lines(["dfqs: note: pytest chose rootdir * write --dfqs-model=PATH to keep *"])
    assert "dfqs: note" not in pytester.runpytest_inprocess(f"--dfqs-model={moe_model}", "--collect-only").stdout.str()


def test_junit_xml_carries_clause_and_level(moe_static: SharedRun, moe_model: Path) -> None:
    junit = moe_static.folder / "junit.xml"
    result = moe_static.result
    assert result.ret == 0
    xml = junit.read_text()
    assert '<property name="dfqs_clause" value="DFQS-3.1" />' in xml
    assert '<property name="dfqs_level" value="SHALL" />' in xml
    assert '<property name="dfqs_check" value="no-split" />' in xml
    assert '<property name="dfqs_verdict" value="INCOMPLETE" />' in xml  # the terminal's and the certificate's word
    assert '<property name="dfqs_complete" value="false" />' in xml
    assert f'<property name="dfqs_verdict:{moe_model.name}" value="INCOMPLETE" />' in xml
    outcomes, suite = result.parseoutcomes(), ElementTree.parse(junit).getroot().find("testsuite")
    assert suite is not None and outcomes["xfailed"] > 0  # informational clauses not met: xfailed on the terminal
    # JUnit knows no xfail (docs/outputs.md): its skipped are the terminal's skipped and xfailed, told apart by type
    assert int(suite.get("skipped", "")) == outcomes["skipped"] + outcomes["xfailed"]
    assert int(suite.get("tests", "")) == sum(outcomes[kind] for kind in ("passed", "skipped", "xfailed"))
    kinds = Counter(skipped.get("type") for skipped in suite.iter("skipped"))
    assert kinds == {"pytest.skip": outcomes["skipped"], "pytest.xfail": outcomes["xfailed"]}
    assert all(s.get("message", "").startswith("DFQS-") for s in suite.iter("skipped") if s.get("type") == "pytest.xfail")


def test_a_selection_never_yields_conformant(certify: Certification, runtime_moe_model: Path) -> None:
    """-k picks one check: the clauses it leaves undecided are named, and the certificate records the selection."""
    result = certify.run(f"--dfqs-model={runtime_moe_model}", "--dfqs-tier=runtime", "-k", "cpu-generation")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "DFQS-3.2   SHALL   NOT EVALUATED   deselected: gguf-header",
            "verdict: INCOMPLETE at tier runtime*",
            "undecided: DFQS-3.1 (deselected: gguf-header, *); DFQS-3.2 (deselected: gguf-header);"
            " DFQS-3.3 (deselected: router-structure, routing-determinism, routing-trace); DFQS-11.1, DFQS-11.2 (tier eval not run);"
            " DFQS-AI.1 (deselected: sha256)",
        ]
    )
    certificate = certify.certificate()
    validate_certificate(certificate)
    assert certificate["verdict"] == "INCOMPLETE" and not certificate["complete"]
    assert certificate["selection"]["keyword"] == "cpu-generation" and certificate["selection"]["deselected_tests"] > 20
    single_file = certify.clause("DFQS-3.1")
    assert single_file["status"] == "NOT EVALUATED" and single_file["undecided"].startswith("deselected: gguf-header, tensor-layout")
    gated = certify.run(f"--dfqs-model={runtime_moe_model}", "--dfqs-tier=runtime", "-k", "cpu-generation", "--dfqs-require-complete")
    assert gated.ret == pytest.ExitCode.TESTS_FAILED


def test_a_run_stopped_by_a_failure_is_interrupted(certify: Certification, split_model: Path) -> None:
    """-x stops at the first failure: what did not run is named as interrupted, and the verdict is not CONFORMANT."""
    result = certify.run(f"--dfqs-model={split_model}", "-x", "-p", "no:randomly")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    certificate = certify.certificate()
    validate_certificate(certificate)
    assert certificate["interrupted"] and not certificate["complete"]
    assert certificate["verdict"] == "NOT CONFORMANT"  # the failure it stopped at is a SHALL clause not met
    result.stdout.fnmatch_lines(["verdict: NOT CONFORMANT at tier static (*), interrupted"])


def test_require_complete_has_an_ini_twin(certify: Certification, moe_model: Path, pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ndfqs_require_complete = true\n")
    assert certify.run(f"--dfqs-model={moe_model}").ret == pytest.ExitCode.TESTS_FAILED  # static: INCOMPLETE
    pytester.makeini("[pytest]\ndfqs_require_complete = false\n")
    assert certify.run(f"--dfqs-model={moe_model}").ret == 0


def test_hashing_a_large_file_shows_progress(certify: Certification, moe_model: Path, tmp_path: Path) -> None:
    large = tmp_path / "large.gguf"
    large.write_bytes(moe_model.read_bytes())
    os.truncate(large, 300 << 20)  # trailing zeros after the tensor data; sparse on disk
    digest = hashlib.sha256()
    with open(large, "rb") as handle:
        while chunk := handle.read(8 << 20):
            digest.update(chunk)
    result = certify.run(f"--dfqs-model={large}", f"--dfqs-sha256={digest.hexdigest()}")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["dfqs: sha256 large.gguf: 314.57 MB of 314.57 MB (*/s)", "DFQS-AI.1  SHALL   MET *"])


def test_a_certificate_that_cannot_be_written_is_reported(moe_model: Path, tmp_path: Path) -> None:
    """Its folder takes a new file when the run starts, but the whole certificate does not fit under a file size limit
    (for any user; /dev/full needs a writable /dev). Python ignores SIGXFSZ, so the write fails with EFBIG."""
    report = tmp_path / "certificate.json"
    command = [sys.executable, "-m", "pytest", f"--dfqs-model={moe_model}", f"--dfqs-report={report}", "-p", "no:cacheprovider"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, preexec_fn=limit_file_size)
    assert done.returncode == pytest.ExitCode.INTERNAL_ERROR, done.stdout[-2000:]
    assert f"dfqs: could not write the certificate to {report}: File too large" in done.stdout.splitlines()
    assert "Traceback" not in done.stdout + done.stderr


def limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


def test_a_checksums_file_without_the_model_is_not_met(certify: Certification, moe_model: Path, pytester: pytest.Pytester) -> None:
    sums = pytester.path / "checksums.txt"
    sums.write_text("0" * 64 + "  other.gguf\n")
    assert certify.run(f"--dfqs-model={moe_model}", f"--dfqs-checksums={sums}").ret == 1
    integrity = certify.clause("DFQS-AI.1")
    assert integrity["status"] == "NOT MET" and f"has no entry for {moe_model.name}" in integrity["reason"]


def test_metrics_files_of_models_with_the_same_name_stay_apart() -> None:
    from pytest_dfqs.models_under_test import _per_model_path

    first, second = (_per_model_path(Path("out/metrics.json"), label, 2) for label in ("m.gguf#1", "m.gguf#2"))
    assert first != second and first.name == "metrics-m.gguf-1.json"
    assert _per_model_path(Path("out/metrics.json"), "m.gguf", 1) == Path("out/metrics.json")
