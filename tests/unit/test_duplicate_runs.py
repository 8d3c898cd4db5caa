"""The query service's background duplicate runs: one at a time in the order asked, a run
asked twice given once, cancelled at its next progress report, failures kept, old runs let go."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from query.duplicate_runs import DuplicateRuns, RunRequest
from ris.duplicates.candidates import Progress

WAIT = 10  # seconds: a generous bound for a thread to get going on a loaded machine


def request(under: str = "") -> RunRequest:
    return RunRequest(min_score=None, verify=True, under=under, shared_features=None)


class Work:
    """A run's work that reports progress until let go, so a test decides when it ends."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.go_on = threading.Event()
        self.running = threading.Event()

    def __call__(self, asked: RunRequest, progress: Progress) -> str:
        self.started.append(asked.under)
        progress("checking pairs", 0, 1000)
        self.running.set()
        done = 0
        while not self.go_on.wait(0.01):
            done += 1
            progress("checking pairs", done, 1000)
        if asked.under == "broken":
            raise ValueError("the collection is gone")
        return f"groups under {asked.under!r}"


@pytest.fixture
def work() -> Iterator[Work]:
    yield (found := Work())
    found.go_on.set()


def test_one_run_at_a_time_in_the_order_asked_and_the_same_run_for_the_same_request(
    work: Work,
) -> None:
    runs = DuplicateRuns(work)
    first = runs.start(request("a"))
    assert work.running.wait(WAIT)
    assert runs.start(request("a")) is first  # asked again while it runs
    second = runs.start(request("b"))
    assert second is not first and second.state == "queued" and second.seconds == 0
    assert first.state == "running" and first.total == 1000 and first.stage == "checking pairs"
    work.go_on.set()
    second.finished.result(timeout=WAIT)
    assert (first.state, first.result) == ("done", "groups under 'a'")
    assert (second.state, second.result) == ("done", "groups under 'b'")
    assert work.started == ["a", "b"]
    assert [run.id for run in runs.all()] == [second.id, first.id]  # the newest first
    assert runs.start(request("a")) is not first  # a finished run is not asked again
    runs.close()


def test_a_running_run_stops_at_its_next_progress_report_and_a_queued_one_never_starts(
    work: Work,
) -> None:
    runs = DuplicateRuns(work)
    running = runs.start(request("a"))
    queued = runs.start(request("b"))
    assert work.running.wait(WAIT)
    runs.cancel(queued.id)
    runs.cancel(running.id)
    running.finished.result(timeout=WAIT)
    queued.finished.result(timeout=WAIT)
    assert (running.state, running.result) == ("cancelled", None)
    assert queued.state == "cancelled" and work.started == ["a"]
    # A cancelled run is no longer given for its request: a new one starts.
    again = runs.start(request("a"))
    assert again.id not in (running.id, queued.id)
    work.go_on.set()
    again.finished.result(timeout=WAIT)
    assert again.state == "done"
    assert runs.get("no such run") is None and runs.cancel("no such run") is None
    runs.close()


def test_a_failed_run_keeps_its_reason_and_the_next_run_goes_on(work: Work) -> None:
    runs = DuplicateRuns(work)
    broken = runs.start(request("broken"))
    after = runs.start(request("fine"))
    work.go_on.set()
    after.finished.result(timeout=WAIT)
    assert broken.state == "failed" and broken.error == "the collection is gone"
    assert isinstance(broken.exception, ValueError) and broken.result is None
    assert after.state == "done"
    runs.close()


def test_only_the_newest_finished_runs_are_kept(work: Work) -> None:
    work.go_on.set()
    runs = DuplicateRuns(work, keep=2)
    asked = [runs.start(request(str(n))) for n in range(4)]
    asked[-1].finished.result(timeout=WAIT)
    assert [run.id for run in runs.all()] == [asked[3].id, asked[2].id]
    assert runs.get(asked[0].id) is None
    runs.close()


def test_closing_cancels_the_run_going_on(work: Work) -> None:
    runs = DuplicateRuns(work)
    running = runs.start(request("a"))
    assert work.running.wait(WAIT)
    runs.close()
    assert running.state == "cancelled"
