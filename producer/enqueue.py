"""Enqueue a tree: scan, skip what is already indexed unchanged, send batches with backpressure."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from producer.scan import batched, iter_image_paths
from ris.contract import BatchPayload
from ris.identity import image_id
from ris.jobs import JobTracker, new_job_id

log = logging.getLogger(__name__)

SendBatch = Callable[[BatchPayload], None]
IndexLookup = Callable[[list[int]], dict[int, tuple[int, int]]]


@dataclass
class EnqueueReport:
    job: str
    seen: int = 0
    enqueued: int = 0
    skipped: int = 0
    batches: int = 0


def _file_state(path: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def _unchanged(paths: list[str], lookup: IndexLookup) -> set[str]:
    """The paths whose row in the index has the file's current size and mtime."""
    ids = {path: image_id(path) for path in paths}
    indexed = lookup(list(ids.values()))
    return {
        path
        for path, identifier in ids.items()
        if identifier in indexed and indexed[identifier] == _file_state(path)
    }


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
    ):
        self.tracker = tracker
        self.send = send
        self.finalize = finalize
        self.lookup = lookup
        self.queue_length = queue_length
        self.batch_size = batch_size
        self.max_queue_length = max_queue_length

    def _wait_for_room(self) -> None:
        delay = 0.05
        while self.queue_length() >= self.max_queue_length:
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def run(
        self,
        roots: Iterable[str],
        collection: str,
        on_progress: Callable[[EnqueueReport], None] = lambda report: None,
    ) -> EnqueueReport:
        roots = list(roots)
        report = EnqueueReport(job=new_job_id())
        self.tracker.create(report.job, root=os.pathsep.join(roots), collection=collection)
        paths = (path for root in roots for path in iter_image_paths(root))
        for chunk in batched(paths, self.batch_size):
            report.seen += len(chunk)
            unchanged = _unchanged(chunk, self.lookup) if self.lookup else set()
            if unchanged:
                self.tracker.add_skipped(report.job, len(unchanged))
                report.skipped += len(unchanged)
                chunk = [path for path in chunk if path not in unchanged]
            if chunk:
                self._wait_for_room()
                number = self.tracker.add_batch(report.job, len(chunk))
                self.send(BatchPayload(job=report.job, batch=number, paths=chunk))
                report.enqueued += len(chunk)
                report.batches += 1
            on_progress(report)
        if self.tracker.finish_scan(report.job):
            # Every batch finished before the scan did: nobody else will finalise this job.
            if report.batches:
                self.finalize(report.job)
            else:
                self.tracker.mark_done(report.job)
        log.info(
            "job %s: %d seen, %d enqueued in %d batches, %d unchanged skipped",
            report.job,
            report.seen,
            report.enqueued,
            report.batches,
            report.skipped,
        )
        return report
