"""The pytest plugin's entry point: options, and nothing more without --dfqs-model.

A project that merely has the plugin installed sees its own test runs
unchanged and pays for no heavy import: the certification hooks (and gguf,
numpy) are loaded and registered only when --dfqs-model is given, the way
allure-pytest registers its listener only under --alluredir. llama_cpp is
imported only by runtime checks.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .catalogue import CONFORMANCE_DIR
from .modelfile.gguf_package import defer_package_init
from .runtime.client import SpareWorkers
from .settings import SETTINGS, SPARE_WORKERS, add_options, check_output_folder, judges_in_header, read_settings

CERTIFICATION_PLUGIN = "dfqs-certification"
BENCHMARK_PLUGIN = "benchmark"  # pytest-benchmark, as `-p no:benchmark` names it


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Before any plugin's configure (allure-pytest creates --alluredir there): a bad output folder or option value is a
    usage error first, before a llama.cpp worker is started for a run that would not begin."""
    models = config.getoption("dfqs_models")
    if models:
        defer_package_init()  # before the first header is read: gguf's constants only, until more of gguf is used
        check_output_folder("--alluredir", getattr(config.option, "allure_report_dir", None))
        config.stash[SETTINGS] = read_settings(config)
        if config.pluginmanager.has_plugin(BENCHMARK_PLUGIN) and not _benchmarks_asked(config):
            config.pluginmanager.unregister(name=BENCHMARK_PLUGIN)  # no header, table or .benchmarks/ nobody asked for
        if judges_in_header(config):
            _start_spare_workers(config, len(models))


def _benchmarks_asked(config: pytest.Config) -> bool:
    """A --benchmark-* option given (command line, PYTEST_ADDOPTS or the ini file's addopts): the eval tier then lends
    pytest-benchmark's fixture to the throughput rounds, and pytest-benchmark reports and saves as asked."""
    words = [*config.invocation_params.args, *os.environ.get("PYTEST_ADDOPTS", "").split(), *config.getini("addopts")]
    return any(str(word).startswith("--benchmark") for word in words)


def _start_spare_workers(config: pytest.Config, count: int) -> None:
    """A llama.cpp worker per model, started now: it imports llama.cpp while the plugin starts, ready when the header
    is read and llama.cpp is asked to judge it (see ModelRuntime.begin_judging)."""
    spares = config.stash[SPARE_WORKERS] = SpareWorkers(count)
    config.add_cleanup(spares.close)


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("dfqs_models"):
        return
    settings = config.stash[SETTINGS]
    from .models_under_test import models_under_test

    models = models_under_test(config, settings)  # llama.cpp judges each header while the rest starts
    from . import certification

    certification.start(config, settings, models)
    config.pluginmanager.register(certification, CERTIFICATION_PLUGIN)
    _collect_conformance_suite(config)


def _collect_conformance_suite(config: pytest.Config) -> None:
    """Run the conformance suite: instead of the default paths, or beside given ones."""
    suite = str(CONFORMANCE_DIR)
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        config.args[:] = [suite]
    elif not any(_inside(Path(arg.split("::")[0]), CONFORMANCE_DIR) for arg in config.args):
        config.args.append(suite)


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The conformance suite is collected only when a model is given."""
    if not config.pluginmanager.has_plugin(CERTIFICATION_PLUGIN) and _inside(collection_path, CONFORMANCE_DIR):
        return True
    return None
