"""Fixtures of the safety tests: the real chat templates llama.cpp ships, read from the pinned llama-cpp-python sdist."""

from __future__ import annotations

import tarfile
from pathlib import Path, PurePosixPath

import pytest

from tests.llama_cpp_source import LLAMA_CPP_PYTHON, SDIST, fetch_sdist

TEMPLATES = f"llama_cpp_python-{LLAMA_CPP_PYTHON}/vendor/llama.cpp/models/templates/"
REAL_TEMPLATE_COUNT = 70  # llama.cpp's corpus in the pinned sdist: what every runtime is tested with upstream


@pytest.fixture(scope="session")
def real_templates(pytestconfig: pytest.Config) -> dict[str, str]:
    """Every `.jinja` file of llama.cpp's template corpus (file name -> text), read straight from the sdist tarball.

    The sdist is fetched with pip into the pytest cache on the first run only, and never unpacked.
    """
    assert pytestconfig.cache is not None
    folder = Path(pytestconfig.cache.mkdir("llama-cpp-sdist"))
    sdist = folder / SDIST if (folder / SDIST).is_file() else fetch_sdist(folder)
    templates = {}
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            if member.isfile() and member.name.startswith(TEMPLATES) and member.name.endswith(".jinja"):
                handle = archive.extractfile(member)
                assert handle is not None
                templates[PurePosixPath(member.name).name] = handle.read().decode("utf-8")
    assert len(templates) == REAL_TEMPLATE_COUNT, sorted(templates)
    return dict(sorted(templates.items()))
