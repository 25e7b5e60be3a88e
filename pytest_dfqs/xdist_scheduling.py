"""pytest-xdist scheduling by model: every test of a model runs on the same worker.

A worker loads a model at its first runtime test and keeps it, so sending one
model's tests to several workers would load it several times. The scheduler
is xdist's scope scheduling with the model as the scope, read from the end of
the test id (`...[DFQS-3.1-no-split-<model>]`). Imported only under xdist.
"""

from __future__ import annotations

from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling


class ModelScopeScheduling(LoadScopeScheduling):
    def __init__(self, config: pytest.Config, log: Any, labels: list[str]) -> None:
        super().__init__(config, log)
        self.labels = sorted(labels, key=len, reverse=True)  # the longest label that fits wins

    def _split_scope(self, nodeid: str) -> str:
        parameters = nodeid.rpartition("[")[2]
        return next((label for label in self.labels if parameters.endswith(f"-{label}]")), nodeid)
