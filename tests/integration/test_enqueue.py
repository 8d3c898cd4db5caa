"""The producer's enqueue loop: batching, skipping, backpressure, stop.

Job records live in a real Redis and change detection asks a real Milvus Lite server; the broker
is a recorder, so that each test can read the batches themselves. The last test sends through
Celery to the real Redis broker."""

import json
import os
import time

import numpy as np

from producer.client import Producer
from producer.enqueue import LOOKUP_BATCHES, Enqueuer
from ris.files.changes import content_hash
from ris.files.identity import image_id
from ris.files.scan import iter_image_paths
from ris.index.base import ImageRecord
from ris.index.milvus import MilvusIndex
from ris.jobs.connection import connect_redis
from ris.jobs.contract import FINALIZE_TASK, INGEST_TASK, BatchPayload
from ris.jobs.tracker import JobTracker
from ris.settings import Settings


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

    @property
    def paths(self) -> list[str]:
        return sorted(path for payload in self.sent for path in payload.paths)


def _enqueuer(tracker, recorder, lookup=None, queue_length=lambda: 0, compare_hash=False):
    return Enqueuer(
        tracker,
        send=recorder.send,
        finalize=recorder.finalize,
        lookup=lookup,
        queue_length=queue_length,
        batch_size=4,
        max_queue_length=3,
        compare_hash=compare_hash,
    )


def _index(index: MilvusIndex, paths: list[str], with_hash: bool = False) -> None:
    records = []
    for path in paths:
        stat = os.stat(path)
        records.append(
            ImageRecord(
                image_id(path),
                path,
                np.ones(4, np.float32),
                stat.st_size,
                stat.st_mtime_ns,
                content_hash(path) if with_hash else "",
            )
        )
    index.upsert(records)


def test_every_image_is_sent_once_in_numbered_batches(redis_url, tmp_path) -> None:
    paths = _tree(tmp_path, 10)
    tracker, recorder = JobTracker(connect_redis(redis_url)), Recorder()
    report = _enqueuer(tracker, recorder).run(iter_image_paths(str(tmp_path)), "t", "c")
    assert [len(p.paths) for p in recorder.sent] == [4, 4, 2]
    assert [p.batch for p in recorder.sent] == [1, 2, 3]
    assert recorder.paths == sorted(paths)
    status = tracker.status(report.job)
    assert status is not None and (status.enqueued, status.batches) == (10, 3)


def test_unchanged_indexed_files_are_skipped_changed_ones_resent(
    redis_url, milvus_server, collection, tmp_path
) -> None:
    paths = _tree(tmp_path, 6)
    index = MilvusIndex(milvus_server.url, collection, dim=4)
    _index(index, paths[:4])
    with open(paths[0], "ab") as handle:  # modified since it was indexed
        handle.write(b"more")
    tracker, recorder = JobTracker(connect_redis(redis_url)), Recorder()
    report = _enqueuer(tracker, recorder, lookup=index.get_file_states).run(
        iter_image_paths(str(tmp_path)), "t", "c"
    )
    assert recorder.paths == sorted([paths[0], paths[4], paths[5]])
    assert (report.seen, report.enqueued, report.skipped) == (6, 3, 3)


def test_content_hash_mode_ignores_touch_and_sees_same_size_edits(
    redis_url, milvus_server, collection, tmp_path
) -> None:
    paths = _tree(tmp_path, 3)
    index = MilvusIndex(milvus_server.url, collection, dim=4)
    _index(index, paths, with_hash=True)
    os.utime(paths[1], ns=(1, 1))  # touched: new mtime, same bytes
    with open(paths[2], "r+b") as handle:  # edited in place: same size, same mtime restored
        stat = os.stat(paths[2])
        handle.write(b"y")
    os.utime(paths[2], ns=(stat.st_atime_ns, stat.st_mtime_ns))
    tracker, recorder = JobTracker(connect_redis(redis_url)), Recorder()
    _enqueuer(tracker, recorder, lookup=index.get_file_states, compare_hash=True).run(
        iter_image_paths(str(tmp_path)), "t", "c"
    )
    assert recorder.paths == [paths[2]]


def test_nothing_to_send_marks_the_job_done_at_once(redis_url, tmp_path) -> None:
    tracker, recorder = JobTracker(connect_redis(redis_url)), Recorder()
    report = _enqueuer(tracker, recorder).run(iter_image_paths(str(tmp_path)), "t", "c")
    status = tracker.status(report.job)
    assert status is not None and status.done and recorder.sent == []


def test_producer_waits_while_the_queue_is_full(redis_url, tmp_path) -> None:
    _tree(tmp_path, 4)
    tracker, recorder = JobTracker(connect_redis(redis_url)), Recorder()
    lengths = iter([5, 5, 5, 0])
    started = time.monotonic()
    _enqueuer(tracker, recorder, queue_length=lambda: next(lengths, 0)).run(
        iter_image_paths(str(tmp_path)), "t", "c"
    )
    assert time.monotonic() - started >= 0.3
    assert len(recorder.sent) == 1


def test_the_queue_never_holds_more_batches_than_the_bound(redis_url, tmp_path) -> None:
    _tree(tmp_path, 40)
    tracker, recorder = JobTracker(connect_redis(redis_url)), Recorder()
    asked_while_full = []

    def queue_length() -> int:  # nothing consumes: the queue holds every batch sent
        if len(recorder.sent) >= 3:
            asked_while_full.append(True)
        return len(recorder.sent)

    report = _enqueuer(tracker, recorder, queue_length=queue_length).run(
        iter_image_paths(str(tmp_path)), "t", "c", should_stop=lambda: len(asked_while_full) > 2
    )
    assert report.interrupted and len(recorder.sent) == 3


def test_the_index_is_asked_once_per_window_of_batches(redis_url, tmp_path) -> None:
    _tree(tmp_path, 10 + 4 * LOOKUP_BATCHES)
    tracker, recorder = JobTracker(connect_redis(redis_url)), Recorder()
    lookups: list[int] = []

    def lookup(ids: list[int]) -> dict:
        lookups.append(len(ids))
        return {}

    _enqueuer(tracker, recorder, lookup=lookup).run(iter_image_paths(str(tmp_path)), "t", "c")
    assert lookups == [4 * LOOKUP_BATCHES, 10]
    assert [len(p.paths) for p in recorder.sent] == [4] * (LOOKUP_BATCHES + 2) + [2]


def test_a_stop_request_ends_the_job_with_what_was_sent(redis_url, tmp_path) -> None:
    _tree(tmp_path, 12)
    tracker, recorder = JobTracker(connect_redis(redis_url)), Recorder()
    stop_after_first = lambda: len(recorder.sent) >= 1  # noqa: E731
    report = _enqueuer(tracker, recorder).run(
        iter_image_paths(str(tmp_path)), "t", "c", should_stop=stop_after_first
    )
    assert report.interrupted and len(recorder.sent) == 1
    assert tracker.record_batch(report.job, 1, indexed=4, failures={})
    status = tracker.status(report.job)
    assert status is not None and status.interrupted
    assert (status.seen, status.enqueued, status.batches) == (4, 4, 1)


def test_batches_finalize_and_backpressure_all_use_the_producers_queue(redis_url) -> None:
    producer = Producer(Settings(redis_url=redis_url, queue="gpu-test"))
    producer.send(BatchPayload(job="abcdef", batch=1, paths=["/images/a.jpg"]))
    producer.finalize("abcdef")
    broker = producer.tracker.redis
    tasks = [json.loads(message)["headers"]["task"] for message in broker.lrange("gpu-test", 0, -1)]
    assert sorted(tasks) == [FINALIZE_TASK, INGEST_TASK]
    assert broker.llen("ris") == 0
    assert producer.queue_length() == 2
