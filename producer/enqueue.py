"""Enqueue paths: skip what is indexed unchanged, send numbered batches with backpressure."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

from ris.files.changes import FileState, file_state, is_unchanged
from ris.files.identity import image_id, is_url
from ris.files.remote import same_state
from ris.files.scan import batched
from ris.jobs.contract import BatchPayload
from ris.jobs.tracker import JobTracker, new_job_id

log = logging.getLogger(__name__)

# Batches whose paths are looked up in the index (and the failure record) with one call each.
LOOKUP_BATCHES = 16

SendBatch = Callable[[BatchPayload], None]
IndexLookup = Callable[[list[int]], dict[int, FileState]]
# The state of each URL now (from the listing, or asked): how a URL's change is told.
RemoteStates = Callable[[list[str]], dict[str, FileState]]


@dataclass
class EnqueueReport:
    job: str
    enqueued: int = 0
    skipped: int = 0
    batches: int = 0
    interrupted: bool = False

    @property
    def seen(self) -> int:
        return self.enqueued + self.skipped

    def as_dict(self) -> dict[str, object]:
        return {"seen": self.seen, **asdict(self)}


class Enqueuer:
    """Sends one job's batches; the broker, index and queue are injected so tests can see them."""

    def __init__(
        self,
        tracker: JobTracker,
        send: SendBatch,
        finalize: Callable[[str], None],
        lookup: IndexLookup | None,
        queue_length: Callable[[], int],
        batch_size: int,
        max_queue_length: int,
        compare_hash: bool = False,
        remote_states: RemoteStates | None = None,
    ):
        self.tracker = tracker
        self.send = send
        self.finalize = finalize
        self.lookup = lookup
        self.queue_length = queue_length
        self.batch_size = batch_size
        self.max_queue_length = max_queue_length
        self.compare_hash = compare_hash
        self.remote_states = remote_states

    def _wait_for_room(self, should_stop: Callable[[], bool]) -> int:
        """Block while the queue is at its bound; returns how many batches fit now."""
        delay = 0.05
        while (room := self.max_queue_length - self.queue_length()) <= 0 and not should_stop():
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
        return room

    def _changed(self, window: list[str], collection: str) -> list[str]:
        """The paths that are neither indexed as they are now nor failed as they are now."""
        if self.lookup is None:
            return window
        ids = [image_id(path) for path in window]
        indexed = self.lookup(ids)
        urls = [path for path in window if is_url(path)]
        remote = self.remote_states(urls) if urls and self.remote_states else {}

        def unchanged(path: str, identifier: int) -> bool:
            if path in remote:
                return same_state(remote[path], indexed.get(identifier))
            return is_unchanged(path, indexed.get(identifier), self.compare_hash)

        def state_now(path: str) -> tuple[int, int]:
            state = remote.get(path)
            return (state.size, state.mtime_ns) if state else file_state(path)

        changed = [
            path
            for path, identifier in zip(window, ids, strict=True)
            if not unchanged(path, identifier)
        ]
        failed_before = self.tracker.known_failures(collection, changed)
        return [
            path
            for path in changed
            if path not in failed_before or failed_before[path] != state_now(path)
        ]

    def run(
        self,
        paths: Iterable[str],
        label: str,
        collection: str,
        on_progress: Callable[[EnqueueReport], None] = lambda report: None,
        should_stop: Callable[[], bool] = lambda: False,
        model: str = "",
    ) -> EnqueueReport:
        """Send every changed path in `paths` as one job into `collection`, embedded with
        `model`: each batch names both, so a worker writes where the job says.

        When `should_stop()` turns true (Ctrl-C), the job ends with the batches already sent:
        they are processed and the job completes; running the command again does the rest.
        """
        report = EnqueueReport(job=new_job_id())
        self.tracker.create(report.job, root=label, collection=collection, model=model)
        room = 0  # batches the queue takes before its length is asked again
        # The index and the failure record are asked once per window of several batches.
        try:
            for window in batched(paths, self.batch_size * LOOKUP_BATCHES):
                changed = self._changed(window, collection)
                skipped = len(window) - len(changed)
                if skipped:
                    self.tracker.add_skipped(report.job, skipped)
                    report.skipped += skipped
                    on_progress(report)
                for batch in batched(changed, self.batch_size):
                    if room <= 0:
                        room = self._wait_for_room(should_stop)
                    if should_stop():
                        break
                    number = self.tracker.add_batch(report.job, len(batch))
                    self.send(BatchPayload(report.job, number, batch, collection, model))
                    room -= 1
                    report.enqueued += len(batch)
                    report.batches += 1
                    on_progress(report)
                if should_stop():
                    report.interrupted = True
                    break
        except BaseException:
            report.interrupted = True  # a listing that failed: the batches sent still finish
            raise
        finally:
            self._finish(report)
        log.info(
            "job %s: %d seen, %d enqueued in %d batches, %d unchanged skipped%s",
            report.job,
            report.seen,
            report.enqueued,
            report.batches,
            report.skipped,
            " (interrupted)" if report.interrupted else "",
        )
        return report

    def _finish(self, report: EnqueueReport) -> None:
        if self.tracker.finish_scan(report.job, interrupted=report.interrupted):
            # Every batch finished before the scan did: nobody else will finalise this job.
            if report.batches:
                self.finalize(report.job)
            else:
                self.tracker.mark_done(report.job)
