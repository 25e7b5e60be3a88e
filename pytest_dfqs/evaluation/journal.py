"""The eval tier's journal: every measured item appended as it is made, so that an interrupted run can be resumed.

On the reference model at 0.2-0.5 tokens per second the eval tier takes hours.
Each item (a reasoning answer, a HumanEval result, a context probe, the
throughput rounds) goes into a JSON-lines file as soon as it is measured, under
a first line that holds the model's digest and the recorded conditions.
`--dfqs-resume` reads it back and measures only what is missing. A journal made
under other conditions is refused, naming the condition that changed, because
its items would not be comparable (DFQS-11.2). Without `--dfqs-resume` a run
starts a fresh journal.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_dfqs.runtime.client import RuntimeNotEvaluated

JOURNAL_FORMAT = "dfqs-journal"
JOURNAL_VERSION = 1
PROGRESS_EVERY_S = 5.0  # a progress line at most this often while items are measured


class JournalMismatch(RuntimeNotEvaluated):
    """A journal of other conditions: resuming from it would mix incomparable measurements."""


class Journal:
    """Measured items of one model under one set of conditions; a journal without a path keeps nothing."""

    def __init__(
        self,
        path: Path | None,
        conditions: dict[str, Any],
        resume: bool = False,
        announce: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._announce, self._clock = announce, clock
        self._last_progress = clock()
        self.resumed = False
        self.entries: dict[tuple[str, str], Any] = {}
        self.reused: Counter[str] = Counter()
        self.measured: Counter[str] = Counter()
        if path is None:
            return
        if resume and path.exists():
            self._resume(path, conditions)
        else:
            header = {"format": JOURNAL_FORMAT, "format_version": JOURNAL_VERSION, "conditions": conditions}
            path.write_text(json.dumps(header, default=str) + "\n", encoding="utf-8")

    def _resume(self, path: Path, conditions: dict[str, Any]) -> None:
        lines = path.read_text(encoding="utf-8").splitlines()
        header = _parsed(lines[0]) if lines else None
        recorded = header.get("conditions") if isinstance(header, dict) else None
        if not isinstance(recorded, dict):
            raise JournalMismatch(f"{path} is not a pytest-dfqs journal; run without --dfqs-resume to start afresh")
        normalized = json.loads(json.dumps(conditions, default=str))
        changed = [key for key in sorted(set(recorded) | set(normalized)) if recorded.get(key) != normalized.get(key)]
        if changed:
            key = changed[0]
            raise JournalMismatch(
                f"the journal {path} was made under other conditions: {key} was {recorded.get(key)!r}, is now"
                f" {normalized.get(key)!r}; its items are not comparable, run without --dfqs-resume to start afresh"
            )
        for line in lines[1:]:
            entry = _parsed(line)  # the last line may be cut short by the interruption: it is measured again
            if isinstance(entry, dict) and {"kind", "item", "result"} <= set(entry):
                self.entries[(entry["kind"], entry["item"])] = entry["result"]
        self.resumed = True

    def item(self, kind: str, item_id: str, measure: Callable[[], Any], keep: Callable[[Any], bool] = lambda result: True) -> Any:
        """The item's result: from the journal when a resumed run has it, else measured now and appended if `keep` says so."""
        if self.path is None:
            return measure()
        key = (kind, item_id)
        if key in self.entries:
            self.reused[kind] += 1
            return self.entries[key]
        result = measure()
        if not keep(result):
            return result
        self.measured[kind] += 1
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"kind": kind, "item": item_id, "result": result}, default=str) + "\n")
        self.entries[key] = result
        self._progress(kind, item_id)
        return result

    def _progress(self, kind: str, item_id: str) -> None:
        """A line every PROGRESS_EVERY_S while items are measured: hours on a slow model are never silent."""
        if self._announce is None or self._clock() - self._last_progress < PROGRESS_EVERY_S:
            return
        self._last_progress = self._clock()
        reused = f", {self.reused[kind]} from the journal" if self.reused[kind] else ""
        self._announce(f"{kind}: {self.measured[kind]} items measured{reused}, the last {item_id}")

    def summary(self) -> dict[str, Any]:
        """What the metrics record says of the journal: where it is, whether this run resumed it, what it reused."""
        return {
            "path": str(self.path) if self.path else None,
            "resumed": self.resumed,
            "reused_items": dict(self.reused),
            "measured_items": dict(self.measured),
        }


NO_JOURNAL = Journal(None, {})  # measures every item and keeps none


def _parsed(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return None
