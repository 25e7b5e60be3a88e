"""Fixtures of the safety tests: the real chat templates llama.cpp ships, read from the pinned llama-cpp-python sdist."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.safety.templated import REAL_TEMPLATE_COUNT, read_real_templates


@pytest.fixture(scope="session")
def real_templates(pytestconfig: pytest.Config) -> dict[str, str]:
    """Every `.jinja` file of llama.cpp's template corpus (file name -> text), read straight from the sdist tarball.

    The sdist is fetched once with pip into the pytest cache and never unpacked: nothing of it lands beside the tests.
    """
    assert pytestconfig.cache is not None
    templates = read_real_templates(Path(pytestconfig.cache.mkdir("llama-cpp-sdist")))
    assert len(templates) == REAL_TEMPLATE_COUNT, sorted(templates)
    return templates
