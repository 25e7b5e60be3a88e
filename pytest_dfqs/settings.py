"""The plugin's options: help texts, validation and one precedence rule.

Every option's value comes from the command line when given there, else from
its ini twin, else from its default (CLI > ini > default). Each value is
checked by one `_validate_*` function that names where a bad value came from,
so a typo is a pytest usage error with a specific message, never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .catalogue import PROFILES, TIERS
from .evaluation.budget import BUDGETS, FEW_SHOT, PROMPT_MODES
from .modelfile.integrity import parse_checksums, validate_sha256
from .remote.names import check_remote_name, is_remote
from .runtime.client import DEFAULT_REQUEST_TIMEOUT_S, SpareWorkers
from .runtime.host import physical_cores
from .runtime.rpc import RpcEndpointError, hello, parse_endpoints, parse_split, rpc_backend_installed

if TYPE_CHECKING:
    from .claims.claims_file import ClaimsFile

DEMO_MODEL = "demo"
SPARE_WORKERS = pytest.StashKey[SpareWorkers]()  # llama.cpp workers started when the options were parsed
SETTINGS = pytest.StashKey["Settings"]()  # the settings in force, read and checked when the options are parsed
MAX_THREADS = 4 * (os.cpu_count() or 1)
MIN_CTX = 256  # room for the runtime checks' prompts
MAX_CTX = (1 << 31) - 1
MAX_REQUEST_TIMEOUT_S = 7 * 24 * 3600
MAX_EVAL_SEQUENCES = 16
DEFAULT_HEADER_TIMEOUT_S = 120
RPC_HELLO_TIMEOUT_S = 10

MODEL_HELP = (
    "GGUF model file to certify: a path, an http(s) URL or hf://OWNER/REPO[@REVISION]/PATH.gguf or hf://OWNER/REPO:QUANT"
    " (a remote file's header is fetched by range requests, nothing else);"
    f" repeat to certify several models. '{DEMO_MODEL}' generates and certifies the built-in tiny MoE demo model."
)
DOWNLOAD_HELP = (
    "Download a remote model whole (every shard of its set) into pytest's cache, resumable, hashed as it streams,"
    " so the runtime and eval tiers can run on it; without it only the header is fetched."
)
HEADER_TIMEOUT_HELP = f"Time limit for fetching a remote model's header, in seconds (default {DEFAULT_HEADER_TIMEOUT_S})."
TIER_HELP = "Highest tier to run: static (header only, default), runtime (llama.cpp on CPU) or eval (section 11 metrics)."
STRICT_HELP = "Treat SHOULD clauses that are not met as failures (default: warnings)."
REQUIRE_COMPLETE_HELP = (
    "Fail the run when the verdict is INCOMPLETE (a deciding clause not decided: tier not run, tests deselected,"
    " interrupted, skipped by the memory preflight, ERROR); for certification gates. Default: INCOMPLETE exits 0."
)
PROFILE_HELP = (
    "'reference': decide the reference-profile clauses (sections 5, 9, 14, 15) and expect the published"
    " SHA-256 of DeepSeek-V4-Flash-IQ1_S-XL.gguf; without it they are informational."
)
SHA256_HELP = "Expected SHA-256 of the model file (64 hex digits)."
CHECKSUMS_HELP = "sha256sum-format file ('<digest>  <file name>' per line) holding the model's expected digest."
REPORT_HELP = "Write the certificate JSON to this path (its JSON Schema: pytest_dfqs/schemas/dfqs-certificate-2.schema.json, installed)."
THREADS_HELP = "CPU threads for the runtime tier (default: the number of physical cores)."
REQUEST_TIMEOUT_HELP = (
    "Seconds one llama.cpp request may take (a load, a fill, a measurement) before the worker is stopped and the check is"
    " ERROR (default: 3600)."
)
CTX_HELP = "Context size in tokens for the runtime tier (default: 4096, at most the model's declared context)."
BUDGET_HELP = "Prompt-set subsets of the eval tier: quick, standard (default) or full; recorded in the conditions."
PROMPT_MODE_HELP = (
    "How the eval tier asks: few-shot (default: worked exemplars, then the question; HumanEval's completion prompt) or chat"
    " (the model's own chat template; falls back to few-shot, said and recorded, for a model without one). Recorded in the conditions."
)
METRICS_HELP = (
    "Write the section 11 metrics record to this path (its JSON Schema: pytest_dfqs/schemas/dfqs-metrics-2.schema.json, installed)."
)
RESUME_HELP = (
    "Continue an interrupted eval-tier run from its journal (.pytest_cache/d/dfqs-journal/): items already measured under"
    " the same model digest and conditions are not measured again; other conditions are refused."
)
TRACE_RECORD_HELP = (
    "Record the model's routing trace to this path during the runtime tier"
    " (its JSON Schema: pytest_dfqs/schemas/dfqs-trace-1.schema.json, installed)."
)
TRACE_HELP = (
    "Verify the model against a routing trace recorded earlier (--dfqs-trace-record), on this llama.cpp build and machine:"
    " same expert sets and next tokens up to numerical ties (evidence for DFQS-3.3)."
)
REFERENCE_MODEL_HELP = (
    "A higher-precision GGUF of the same weights (same architecture and tokenizer): the runtime tier compares next tokens"
    " (KL divergence, same top token) and expert routing per layer with it; decides section 10's Expert Coherence."
)
UNSANDBOXED_HELP = (
    "Where this machine offers no operating-system isolation (user namespaces, Landlock, seccomp), run the model-written"
    " code of code_score anyway, with rlimits only (a warning in the terminal and the record). Without it code_score is not run there."
)
CLAIMS_HELP = (
    "A claims file (TOML) stating facts about the model (parameters, experts, size, digest, dtypes, scores), each checked as a"
    " test of the 'claims' group; a file path or the name of a shipped one (conformance/claims/). Repeatable. Claims do not"
    " change the verdict unless --dfqs-strict."
)
RECIPE_HELP = (
    "A quantization recipe in llama-quantize's --tensor-type-file format (pattern=type): every tensor's type is checked"
    " against it, as a claim. A file path or the name of a shipped one (conformance/recipes/). Repeatable."
)
BASELINE_HELP = "A metrics record of another model: conditions must be identical, metrics are shown side by side."
RPC_HELP = (
    "llama.cpp rpc-servers to place the model on, HOST:PORT[,HOST:PORT...]: every layer of the runtime and eval tiers goes to"
    " their devices (llama.cpp splits by free memory). Each is asked the protocol's HELLO before any work. Needs"
    " llama-cpp-python built with the RPC backend; RPC has no authentication: private networks only."
)
PREFIX_REUSE_HELP = (
    "on (default) or off: the eval tier computes each reasoning kind's few-shot exemplars once, alone, and keeps their"
    " KV cache for the kind's prompts (a reply depends on its prompt only). Recorded in the conditions: records made"
    " with and without it are not comparable."
)
EVAL_SEQUENCES_HELP = (
    "How many reasoning and HumanEval replies the eval tier extends together in one batch, a finished one making room for"
    f" the next (1-{MAX_EVAL_SEQUENCES}; default 1: one at a time, each reply depending on its prompt only). Recorded in the"
    " conditions: records made with other values are not comparable."
)
TENSOR_SPLIT_HELP = (
    "Shares of the model's layers for the --dfqs-rpc servers, in their order, e.g. 3,1; one more share puts that part"
    " of the layers (the first ones) on this machine's CPU, e.g. 1,1,1. Default: llama.cpp's split by the servers' free memory."
)
SAFETY_CHOICES = ("fail", "warn")
SWITCH = ("on", "off")
SAFETY_HELP = (
    "What a dangerous chat template (code that reaches for Python objects, or a rendering the sandbox stops) does:"
    " fail (default: the run exits 1, the DFQS verdict unchanged) or warn (reported only)."
)
SARIF_HELP = (
    "Write the findings that are not met (NOT MET, ERROR, dangerous templates) as SARIF 2.1.0 to this path,"
    " for code scanning (GitHub's upload-sarif)."
)


@dataclass(frozen=True)
class Settings:
    models: tuple[str, ...]
    tier: str
    strict: bool
    require_complete: bool
    profile: str | None
    sha256: str | None
    checksums: dict[str, str] | None
    checksums_path: Path | None
    report: Path | None
    threads: int
    ctx: int | None
    request_timeout: int
    eval_budget: str
    prompt_mode: str
    metrics: Path | None
    baseline: Path | None
    resume: bool
    claims: tuple[ClaimsFile, ...] = ()
    trace_record: Path | None = None
    trace: Path | None = None
    reference_model: Path | None = None
    allow_unsandboxed_code: bool = False
    header_timeout: int = DEFAULT_HEADER_TIMEOUT_S
    download: bool = False
    safety: str = "fail"
    sarif: Path | None = None
    rpc: tuple[str, ...] = ()
    tensor_split: tuple[float, ...] = ()
    prefix_reuse: bool = True
    eval_sequences: int = 1


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("dfqs", "DFQS v1.0 model certification")
    group.addoption("--dfqs-model", action="append", dest="dfqs_models", metavar="PATH", default=[], help=MODEL_HELP)
    group.addoption("--dfqs-tier", dest="dfqs_tier", metavar="TIER", help=TIER_HELP)
    group.addoption("--dfqs-strict", action="store_true", dest="dfqs_strict", default=None, help=STRICT_HELP)
    group.addoption("--dfqs-require-complete", action="store_true", dest="dfqs_require_complete", default=None, help=REQUIRE_COMPLETE_HELP)
    group.addoption("--dfqs-profile", dest="dfqs_profile", metavar="PROFILE", help=PROFILE_HELP)
    group.addoption("--dfqs-sha256", dest="dfqs_sha256", metavar="HEX", help=SHA256_HELP)
    group.addoption("--dfqs-checksums", dest="dfqs_checksums", metavar="FILE", help=CHECKSUMS_HELP)
    group.addoption("--dfqs-report", dest="dfqs_report", metavar="PATH", help=REPORT_HELP)
    group.addoption("--dfqs-threads", dest="dfqs_threads", metavar="N", help=THREADS_HELP)
    group.addoption("--dfqs-ctx", dest="dfqs_ctx", metavar="TOKENS", help=CTX_HELP)
    group.addoption("--dfqs-request-timeout", dest="dfqs_request_timeout", metavar="SECONDS", help=REQUEST_TIMEOUT_HELP)
    group.addoption("--dfqs-header-timeout", dest="dfqs_header_timeout", metavar="SECONDS", help=HEADER_TIMEOUT_HELP)
    group.addoption("--dfqs-download", action="store_true", dest="dfqs_download", default=None, help=DOWNLOAD_HELP)
    group.addoption("--dfqs-eval-budget", dest="dfqs_eval_budget", metavar="BUDGET", help=BUDGET_HELP)
    group.addoption("--dfqs-prompt-mode", dest="dfqs_prompt_mode", metavar="MODE", help=PROMPT_MODE_HELP)
    group.addoption("--dfqs-metrics", dest="dfqs_metrics", metavar="PATH", help=METRICS_HELP)
    group.addoption("--dfqs-prefix-reuse", dest="dfqs_prefix_reuse", metavar="on|off", help=PREFIX_REUSE_HELP)
    group.addoption("--dfqs-eval-sequences", dest="dfqs_eval_sequences", metavar="N", help=EVAL_SEQUENCES_HELP)
    group.addoption("--dfqs-baseline", dest="dfqs_baseline", metavar="RECORD", help=BASELINE_HELP)
    group.addoption("--dfqs-trace-record", dest="dfqs_trace_record", metavar="PATH", help=TRACE_RECORD_HELP)
    group.addoption("--dfqs-trace", dest="dfqs_trace", metavar="PATH", help=TRACE_HELP)
    group.addoption("--dfqs-reference-model", dest="dfqs_reference_model", metavar="PATH", help=REFERENCE_MODEL_HELP)
    group.addoption(
        "--dfqs-allow-unsandboxed-code", action="store_true", dest="dfqs_allow_unsandboxed_code", default=None, help=UNSANDBOXED_HELP
    )
    group.addoption("--dfqs-claims", action="append", dest="dfqs_claims", metavar="FILE", default=None, help=CLAIMS_HELP)
    group.addoption("--dfqs-recipe", action="append", dest="dfqs_recipes", metavar="FILE", default=None, help=RECIPE_HELP)
    group.addoption("--dfqs-resume", action="store_true", dest="dfqs_resume", default=False, help=RESUME_HELP)
    group.addoption("--dfqs-rpc", dest="dfqs_rpc", metavar="HOST:PORT[,...]", help=RPC_HELP)
    group.addoption("--dfqs-tensor-split", dest="dfqs_tensor_split", metavar="SHARE,SHARE[,...]", help=TENSOR_SPLIT_HELP)
    group.addoption("--dfqs-safety", dest="dfqs_safety", metavar="fail|warn", help=SAFETY_HELP)
    group.addoption("--dfqs-sarif", dest="dfqs_sarif", metavar="PATH", help=SARIF_HELP)
    parser.addini("dfqs_tier", TIER_HELP, default="static")
    parser.addini("dfqs_strict", STRICT_HELP, type="bool", default=False)
    parser.addini("dfqs_require_complete", REQUIRE_COMPLETE_HELP, type="bool", default=False)
    parser.addini("dfqs_profile", PROFILE_HELP, default="")
    parser.addini("dfqs_checksums", CHECKSUMS_HELP, default="")
    parser.addini("dfqs_report", REPORT_HELP, default="")
    parser.addini("dfqs_threads", THREADS_HELP, default="")
    parser.addini("dfqs_ctx", CTX_HELP, default="")
    parser.addini("dfqs_request_timeout", REQUEST_TIMEOUT_HELP, default=str(DEFAULT_REQUEST_TIMEOUT_S))
    parser.addini("dfqs_header_timeout", HEADER_TIMEOUT_HELP, default=str(DEFAULT_HEADER_TIMEOUT_S))
    parser.addini("dfqs_download", DOWNLOAD_HELP, type="bool", default=False)
    parser.addini("dfqs_eval_budget", BUDGET_HELP, default="standard")
    parser.addini("dfqs_prompt_mode", PROMPT_MODE_HELP, default=FEW_SHOT)
    parser.addini("dfqs_metrics", METRICS_HELP, default="")
    parser.addini("dfqs_prefix_reuse", PREFIX_REUSE_HELP, default="on")
    parser.addini("dfqs_eval_sequences", EVAL_SEQUENCES_HELP, default="1")
    parser.addini("dfqs_allow_unsandboxed_code", UNSANDBOXED_HELP, type="bool", default=False)
    parser.addini("dfqs_claims", CLAIMS_HELP, type="linelist", default=[])
    parser.addini("dfqs_recipes", RECIPE_HELP, type="linelist", default=[])
    parser.addini("dfqs_rpc", RPC_HELP, default="")
    parser.addini("dfqs_tensor_split", TENSOR_SPLIT_HELP, default="")
    parser.addini("dfqs_safety", SAFETY_HELP, default="fail")
    parser.addini("dfqs_sarif", SARIF_HELP, default="")


def judges_in_header(config: pytest.Config) -> bool:
    """llama.cpp judges for the header the user reads: not for --collect-only, not an xdist worker's, which nobody sees
    (it would start a llama.cpp worker for every model, the models it never tests included)."""
    return not config.option.collectonly and not hasattr(config, "workerinput")


def _pick(config: pytest.Config, option: str, ini: str) -> tuple[object, str]:
    """The value in force and where it came from (CLI > ini)."""
    value = config.getoption(option)
    if value is not None:
        return value, f"--{option.replace('_', '-')}"
    try:
        return config.getini(ini), f"ini option {ini}"
    except (ValueError, pytest.UsageError) as error:  # a bool ini option that is not a truth value
        raise pytest.UsageError(f"ini option {ini}: {error}") from None


def read_settings(config: pytest.Config) -> Settings:
    tier, tier_from = _pick(config, "dfqs_tier", "dfqs_tier")
    strict, _ = _pick(config, "dfqs_strict", "dfqs_strict")
    require_complete, _ = _pick(config, "dfqs_require_complete", "dfqs_require_complete")
    profile, profile_from = _pick(config, "dfqs_profile", "dfqs_profile")
    checksums, checksums_from = _pick(config, "dfqs_checksums", "dfqs_checksums")
    report, report_from = _pick(config, "dfqs_report", "dfqs_report")
    threads, threads_from = _pick(config, "dfqs_threads", "dfqs_threads")
    ctx, ctx_from = _pick(config, "dfqs_ctx", "dfqs_ctx")
    timeout, timeout_from = _pick(config, "dfqs_request_timeout", "dfqs_request_timeout")
    header_timeout, header_timeout_from = _pick(config, "dfqs_header_timeout", "dfqs_header_timeout")
    budget, budget_from = _pick(config, "dfqs_eval_budget", "dfqs_eval_budget")
    prompt_mode, prompt_mode_from = _pick(config, "dfqs_prompt_mode", "dfqs_prompt_mode")
    metrics, metrics_from = _pick(config, "dfqs_metrics", "dfqs_metrics")
    safety, safety_from = _pick(config, "dfqs_safety", "dfqs_safety")
    sarif, sarif_from = _pick(config, "dfqs_sarif", "dfqs_sarif")
    rpc, rpc_from = _pick(config, "dfqs_rpc", "dfqs_rpc")
    reuse, reuse_from = _pick(config, "dfqs_prefix_reuse", "dfqs_prefix_reuse")
    sequences, sequences_from = _pick(config, "dfqs_eval_sequences", "dfqs_eval_sequences")
    endpoints = _validate_rpc(str(rpc), rpc_from) if rpc else ()
    baseline = config.getoption("dfqs_baseline")
    trace_record, trace = config.getoption("dfqs_trace_record"), config.getoption("dfqs_trace")
    reference_model = config.getoption("dfqs_reference_model")
    sha256 = config.getoption("dfqs_sha256")
    checksums_path = _validate_readable_file(checksums, checksums_from) if checksums else None
    models = tuple(config.getoption("dfqs_models"))
    if sha256 and len(models) > 1:
        raise pytest.UsageError("--dfqs-sha256 names one digest but several --dfqs-model were given; use --dfqs-checksums FILE instead")
    settings = Settings(
        models=tuple(_validate_model(m, "--dfqs-model") for m in models),
        tier=_validate_choice(str(tier), TIERS, tier_from),
        strict=bool(strict),
        require_complete=bool(require_complete),
        profile=_validate_choice(str(profile), PROFILES, profile_from) if profile else None,
        sha256=_validate_sha256(sha256, "--dfqs-sha256") if sha256 else None,
        checksums=_validate_checksums(checksums_path, checksums_from) if checksums_path else None,
        checksums_path=checksums_path,
        report=_validate_report(str(report), report_from) if report else None,
        threads=_validate_count(str(threads), threads_from, 1, MAX_THREADS) if threads else physical_cores(),
        ctx=_validate_count(str(ctx), ctx_from, MIN_CTX, MAX_CTX) if ctx else None,
        request_timeout=_validate_count(str(timeout), timeout_from, 1, MAX_REQUEST_TIMEOUT_S),
        eval_budget=_validate_choice(str(budget), tuple(BUDGETS), budget_from),
        prompt_mode=_validate_choice(str(prompt_mode), PROMPT_MODES, prompt_mode_from),
        metrics=_validate_report(str(metrics), metrics_from) if metrics else None,
        resume=bool(config.getoption("dfqs_resume")),
        baseline=_validate_json(_validate_readable_file(baseline, "--dfqs-baseline"), "--dfqs-baseline") if baseline else None,
        claims=_claims_files(config),
        trace_record=_validate_report(str(trace_record), "--dfqs-trace-record") if trace_record else None,
        trace=_validate_json(_validate_readable_file(trace, "--dfqs-trace"), "--dfqs-trace") if trace else None,
        reference_model=_validate_readable_file(reference_model, "--dfqs-reference-model") if reference_model else None,
        allow_unsandboxed_code=bool(_pick(config, "dfqs_allow_unsandboxed_code", "dfqs_allow_unsandboxed_code")[0]),
        header_timeout=_validate_count(str(header_timeout), header_timeout_from, 1, MAX_REQUEST_TIMEOUT_S),
        download=bool(_pick(config, "dfqs_download", "dfqs_download")[0]),
        safety=_validate_choice(str(safety), SAFETY_CHOICES, safety_from),
        sarif=_validate_report(str(sarif), sarif_from) if sarif else None,
        rpc=endpoints,
        tensor_split=_validate_split(config, endpoints),
        prefix_reuse=_validate_choice(str(reuse), SWITCH, reuse_from) == "on",
        eval_sequences=_validate_count(str(sequences), sequences_from, 1, MAX_EVAL_SEQUENCES),
    )
    _validate_outputs_spare_inputs(settings)
    return settings


def _claims_files(config: pytest.Config) -> tuple[ClaimsFile, ...]:
    """The claims files and recipes in force (CLI > ini), read and checked now: a bad one is a usage error before any test."""
    from .claims.claims_file import ClaimsError, load_claims  # gguf and numpy: imported only when a model is certified

    claims, claims_from = _paths(config, "dfqs_claims", "--dfqs-claims")
    recipes, recipes_from = _paths(config, "dfqs_recipes", "--dfqs-recipe")
    files = []
    for values, where, recipe in ((claims, claims_from, False), (recipes, recipes_from, True)):
        try:
            files += [load_claims(value, recipe) for value in values]
        except ClaimsError as error:
            raise pytest.UsageError(f"{where}: {error}") from None
    names = [claims_file.name for claims_file in files]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise pytest.UsageError(f"{claims_from}: {', '.join(repeated)} given twice; each claims file or recipe once")
    return tuple(files)


def _paths(config: pytest.Config, name: str, flag: str) -> tuple[list[str], str]:
    """A repeatable path option (CLI > ini, both named `name`); ini paths are relative to the ini file's folder."""
    given = config.getoption(name)
    if given:
        return list(given), flag
    folder = config.inipath.parent if config.inipath else config.rootpath
    return [_beside(folder, value) for value in config.getini(name)], f"ini option {name}"


def _beside(folder: Path, value: str) -> str:
    """An ini file's relative path, read from the ini file's folder (a shipped name stays a name)."""
    return str(folder / value) if (folder / value).exists() else value


def _validate_outputs_spare_inputs(settings: Settings) -> None:
    """The plugin never writes over what it reads: the model above all."""
    inputs = [Path(m).expanduser() for m in settings.models if m != DEMO_MODEL and not is_remote(m)]
    inputs += [p for p in (settings.checksums_path, settings.baseline, settings.trace, settings.reference_model) if p is not None]
    outputs = (
        ("--dfqs-report", settings.report),
        ("--dfqs-metrics", settings.metrics),
        ("--dfqs-trace-record", settings.trace_record),
        ("--dfqs-sarif", settings.sarif),
    )
    for option, output in outputs:
        if output is not None and output.exists() and any(output.samefile(path) for path in inputs):
            raise pytest.UsageError(f"{option}: {output} is one of the files being read; give another path for the output")


def _validate_rpc(value: str, where: str) -> tuple[str, ...]:
    """rpc-servers that answer the installed llama.cpp's protocol, asked now (a silent one is named before any work)."""
    try:
        endpoints = parse_endpoints(value)
        if not rpc_backend_installed():
            raise RpcEndpointError(
                "this llama-cpp-python has no RPC backend: reinstall it built with it,"
                ' CMAKE_ARGS="-DGGML_RPC=on" pip install --no-cache-dir --force-reinstall llama-cpp-python==0.3.36'
            )
        for endpoint in endpoints:
            hello(endpoint, RPC_HELLO_TIMEOUT_S)
    except RpcEndpointError as error:
        raise pytest.UsageError(f"{where}: {error}") from None
    return tuple(str(endpoint) for endpoint in endpoints)


def _validate_split(config: pytest.Config, endpoints: tuple[str, ...]) -> tuple[float, ...]:
    split, where = _pick(config, "dfqs_tensor_split", "dfqs_tensor_split")
    if not split:
        return ()
    if not endpoints:
        raise pytest.UsageError(f"{where}: shares the layers among rpc-servers, and no --dfqs-rpc names one")
    try:
        return parse_split(str(split), len(endpoints))
    except RpcEndpointError as error:
        raise pytest.UsageError(f"{where}: {error}") from None


def _validate_choice(value: str, choices: tuple[str, ...], where: str) -> str:
    if value not in choices:
        raise pytest.UsageError(f"{where}: {value!r} is not one of {', '.join(choices)}")
    return value


def _validate_count(value: str, where: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise pytest.UsageError(f"{where}: {value!r} is not a whole number") from None
    if not low <= number <= high:
        raise pytest.UsageError(f"{where}: {number} is outside {low}..{high}")
    return number


def _validate_model(value: str, where: str) -> str:
    if value == DEMO_MODEL:
        return value
    if is_remote(value):
        try:
            check_remote_name(value)
        except ValueError as error:
            raise pytest.UsageError(f"{where}: {error}") from None
        return value
    _validate_readable_file(value, where)
    return value


@contextlib.contextmanager
def _os_errors(where: str, path: Path) -> Iterator[None]:
    """The system refusing to look at a path (a name too long, a loop of links) is the option's usage error."""
    try:
        yield
    except OSError as error:
        raise pytest.UsageError(f"{where}: {path}: {error.strerror or error}") from None


def _validate_readable_file(value: object, where: str) -> Path:
    path = Path(str(value)).expanduser()
    with _os_errors(where, path):
        if not path.exists():
            raise pytest.UsageError(f"{where}: {path} does not exist")
        if path.is_dir():
            raise pytest.UsageError(f"{where}: {path} is a directory; give the path of a file")
        if not path.is_file():
            raise pytest.UsageError(f"{where}: {path} is not a regular file (a pipe or a device cannot be certified)")
        if not os.access(path, os.R_OK):
            raise pytest.UsageError(f"{where}: {path} is not readable (check its permissions)")
        return path


def _validate_sha256(value: str, where: str) -> str:
    try:
        return validate_sha256(value)
    except ValueError as error:
        raise pytest.UsageError(f"{where}: {error}") from None


def _validate_checksums(path: Path, where: str) -> dict[str, str]:
    try:
        return parse_checksums(path.read_text(encoding="utf-8"), str(path))
    except (ValueError, UnicodeDecodeError) as error:
        raise pytest.UsageError(f"{where}: {error}") from None


def _validate_json(path: Path, where: str) -> Path:
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise pytest.UsageError(f"{where}: {path} is not JSON ({error})") from None
    return path


def _validate_report(value: str, where: str) -> Path:
    path = Path(value).expanduser()
    with _os_errors(where, path):
        if path.is_dir():
            raise pytest.UsageError(f"{where}: {path} is a directory; give the path of the certificate file to write")
        if not path.parent.is_dir():
            raise pytest.UsageError(f"{where}: the folder {path.parent} does not exist")
        problem = writable_problem(path.parent)
        if problem:
            raise pytest.UsageError(f"{where}: cannot write into {path.parent} ({problem}); give a path in a writable folder")
        return path


def check_output_folder(where: str, value: str | None) -> None:
    """A folder the run will write into (created if missing): its nearest existing ancestor must take a new file."""
    if not value:
        return
    with _os_errors(where, Path(value)):
        folder = Path(value).expanduser().resolve()
        existing = next((candidate for candidate in (folder, *folder.parents) if candidate.exists()), folder)
        problem = writable_problem(existing) if existing.is_dir() else f"{existing} is not a folder"
    if problem:
        raise pytest.UsageError(f"{where}: cannot write into {folder} ({problem}); give a writable folder")


def writable_problem(folder: Path) -> str | None:
    """Why a file cannot be created in `folder`, found by creating (and removing) one; None when it can.

    Tried now, before any work, so that an hour-long run does not end unable to write what it promised.
    """
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".dfqs-probe-"):
            return None
    except OSError as error:
        return error.strerror or str(error)
