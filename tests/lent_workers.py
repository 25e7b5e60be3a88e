"""One llama.cpp worker of the plugin's, lent to one model under test after another: the tests that ask llama.cpp's
dry run of many files (the structure mutants) start one worker, not one per file.

A dry run is a request that names its file (`plan_memory`), and the worker frees what it built for it before the next,
so one worker serves any number of files. A file that kills it (llama.cpp aborts) leaves the next file a new worker.
"""

from __future__ import annotations

from pytest_dfqs.runtime.client import SpareWorkers, WorkerProcess


class LentWorker(WorkerProcess):
    """A worker that outlives the runtime it is lent to: the runtime's close leaves it running for the next file."""

    def __init__(self) -> None:
        super().__init__()
        self.ready = False

    def wait_ready(self) -> None:
        """Its ready line is read once, by the first runtime that takes it."""
        if not self.ready:
            super().wait_ready()
            self.ready = True

    def stop(self) -> None:
        """Kept for the next file (`release` stops it)."""

    def close(self) -> None:
        """Kept for the next file (`release` closes it)."""

    def release(self) -> None:
        super().stop()
        super().close()


class LentWorkers(SpareWorkers):
    """The same worker for every model that takes one, while it lives; `started` counts the workers it took."""

    def __init__(self) -> None:
        super().__init__(0)
        self.worker: LentWorker | None = None
        self.started = 0

    def take(self) -> WorkerProcess:
        if self.worker is None or not self.worker.alive:
            self.close()
            self.worker, self.started = LentWorker(), self.started + 1
        return self.worker

    def close(self) -> None:
        if self.worker is not None:
            self.worker.release()
            self.worker = None
