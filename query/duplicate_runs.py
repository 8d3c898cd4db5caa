"""The query service's duplicate-group runs, in the background: one at a time, in the order
asked, each with its progress; the latest finished ones kept with their groups."""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from ris.duplicates.candidates import Progress

State = Literal["queued", "running", "done", "failed", "cancelled"]
Result = TypeVar("Result")
# Finished runs kept with their results, the newest first out last.
KEPT_RUNS = 8


@dataclass(frozen=True)
class RunRequest:
    """What a run is asked for: `GET /duplicates`' parameters."""

    min_score: float | None
    verify: bool
    under: str
    shared_features: bool | None


class RunCancelled(Exception):
    """Raised inside a run's progress report once the run is cancelled: it stops there."""


@dataclass
class DuplicateRun(Generic[Result]):
    """One run: what was asked, where it is, and its result once done."""

    id: str
    request: RunRequest
    state: State = "queued"
    stage: str = ""
    done: int = 0
    total: int = 0
    asked_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    error: str = ""
    exception: Exception | None = None  # what made it fail, for a caller waiting on it
    result: Result | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    finished: Future[None] = field(default_factory=Future)

    @property
    def seconds(self) -> float:
        """How long it has run (0 while queued)."""
        if self.started_at is None:
            return 0.0
        return round((self.finished_at or time.time()) - self.started_at, 1)

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")


class DuplicateRuns(Generic[Result]):
    """Runs of `work` (a request and a progress callback in, a result out) on one background
    thread. Asking for what a queued or running run already does gives that run, so a page
    reloaded or a second user does not start the work again."""

    def __init__(self, work: Callable[[RunRequest, Progress], Result], keep: int = KEPT_RUNS):
        self._work = work
        self._keep = keep
        self._runs: OrderedDict[str, DuplicateRun[Result]] = OrderedDict()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="duplicates")

    def start(self, request: RunRequest) -> DuplicateRun[Result]:
        """The queued or running run doing `request`, or a new one queued."""
        with self._lock:
            for going in self._runs.values():
                if going.active and going.request == request and not going.cancelled.is_set():
                    return going
            run: DuplicateRun[Result] = DuplicateRun(uuid.uuid4().hex, request)
            self._runs[run.id] = run
        self._pool.submit(self._run, run)
        return run

    def get(self, run_id: str) -> DuplicateRun[Result] | None:
        with self._lock:
            return self._runs.get(run_id)

    def all(self) -> list[DuplicateRun[Result]]:
        """Every run kept, the newest first."""
        with self._lock:
            return list(reversed(self._runs.values()))

    def cancel(self, run_id: str) -> DuplicateRun[Result] | None:
        """Stop the run at its next progress report (a queued one never starts)."""
        run = self.get(run_id)
        if run is not None and run.active:
            run.cancelled.set()
        return run

    def close(self) -> None:
        """Cancel every run and wait for the one running to stop."""
        for run in self.all():
            run.cancelled.set()
        self._pool.shutdown(wait=True, cancel_futures=False)

    def _run(self, run: DuplicateRun[Result]) -> None:
        if run.cancelled.is_set():
            self._finish(run, "cancelled")
            return
        run.state, run.started_at = "running", time.time()

        def progress(stage: str, done: int, total: int) -> None:
            if run.cancelled.is_set():
                raise RunCancelled
            run.stage, run.done, run.total = stage, done, total

        try:
            run.result = self._work(run.request, progress)
        except RunCancelled:
            self._finish(run, "cancelled")
        except Exception as error:  # noqa: BLE001 - the run fails, the service goes on
            run.error, run.exception = str(error) or type(error).__name__, error
            self._finish(run, "failed")
        else:
            self._finish(run, "done")

    def _finish(self, run: DuplicateRun[Result], state: State) -> None:
        run.state, run.finished_at = state, time.time()
        run.finished.set_result(None)
        with self._lock:
            self._forget_old()

    def _forget_old(self) -> None:
        """Keep the active runs and the newest `keep` finished ones."""
        finished = [run_id for run_id, run in self._runs.items() if not run.active]
        for run_id in finished[: max(0, len(finished) - self._keep)]:
            del self._runs[run_id]
