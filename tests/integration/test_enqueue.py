"""The producer's enqueue loop on real Redis and Milvus: batching, skipping, backpressure."""

import os
import time

import numpy as np

from producer.enqueue import Enqueuer
from ris.contract import BatchPayload
from ris.identity import image_id
from ris.jobs import JobTracker, connect_redis
from ris.store import ImageRecord, VectorStore


def _tree(root, count: int) -> list[str]:
    paths = []
    for number in range(count):
        path = root / f"d{number % 3}" / f"{number:03d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * number)
        paths.append(str(path))
    return paths


class Recorder:
    """Keeps what would go to the broker, so the test can check the batches themselves."""

    def __init__(self) -> None:
        self.sent: list[BatchPayload] = []
        self.finalized: list[str] = []

    def send(self, payload: BatchPayload) -> None:
        self.sent.append(payload)

    def finalize(self, job: str) -> None:
        self.finalized.append(job)


def _enqueuer(tracker, recorder, lookup=None, queue_length=lambda: 0, batch_size=4):
    return Enqueuer(
        tracker,
        send=recorder.send,
        finalize=recorder.finalize,
        lookup=lookup,
        queue_length=queue_length,
        batch_size=batch_size,
        max_queue_length=3,
    )


def test_every_image_is_sent_once_in_numbered_batches(redis_url, tmp_path) -> None:
    paths = _tree(tmp_path, 10)
    tracker, recorder = JobTracker(connect_redis(redis_url)), Recorder()
    report = _enqueuer(tracker, recorder).run([str(tmp_path)], "c")
    assert [len(p.paths) for p in recorder.sent] == [4, 4, 2]
    assert [p.batch for p in recorder.sent] == [1, 2, 3]
    assert sorted(path for p in recorder.sent for path in p.paths) == sorted(paths)
    status = tracker.status(report.job)
    assert status is not None and (status.enqueued, status.batches) == (10, 3)


def test_unchanged_indexed_files_are_skipped_changed_ones_resent(
    redis_url, milvus_server, collection, tmp_path
) -> None:
    paths = _tree(tmp_path, 6)
    store = VectorStore(milvus_server.url, collection, dim=4)
    records = []
    for path in paths[:4]:
        stat = os.stat(path)
        records.append(
            ImageRecord(
                image_id(path), path, np.ones(4, np.float32), stat.st_size, stat.st_mtime_ns
            )
        )
    store.upsert(records)
    with open(paths[0], "ab") as handle:  # modified since it was indexed
        handle.write(b"more")
    tracker, recorder = JobTracker(connect_redis(redis_url)), Recorder()
    report = _enqueuer(tracker, recorder, lookup=store.get_file_states).run([str(tmp_path)], "c")
    sent = sorted(path for p in recorder.sent for path in p.paths)
    assert sent == sorted([paths[0], paths[4], paths[5]])
    assert (report.seen, report.enqueued, report.skipped) == (6, 3, 3)


def test_nothing_to_send_marks_the_job_done_at_once(redis_url, tmp_path) -> None:
    tracker, recorder = JobTracker(connect_redis(redis_url)), Recorder()
    report = _enqueuer(tracker, recorder).run([str(tmp_path)], "c")
    status = tracker.status(report.job)
    assert status is not None and status.done and recorder.sent == []


def test_producer_waits_while_the_queue_is_full(redis_url, tmp_path) -> None:
    _tree(tmp_path, 4)
    tracker, recorder = JobTracker(connect_redis(redis_url)), Recorder()
    lengths = iter([5, 5, 5, 0])
    started = time.monotonic()
    _enqueuer(tracker, recorder, queue_length=lambda: next(lengths, 0)).run([str(tmp_path)], "c")
    assert time.monotonic() - started >= 0.3
    assert len(recorder.sent) == 1
