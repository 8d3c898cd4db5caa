"""Job bookkeeping on a real Redis: counts add up, each batch counts once, completion once."""

import pytest

from ris.errors import ServiceUnavailableError
from ris.jobs.connection import connect_redis
from ris.jobs.tracker import JobTracker, new_job_id


@pytest.fixture
def tracker(redis_url: str) -> JobTracker:
    return JobTracker(connect_redis(redis_url))


def test_counts_of_a_job_add_up(tracker: JobTracker) -> None:
    job = new_job_id()
    tracker.create(job, root="/data", collection="images")
    assert tracker.add_batch(job, 3) == 1
    assert tracker.add_batch(job, 2) == 2
    tracker.add_skipped(job, 4)
    assert not tracker.finish_scan(job)
    assert not tracker.record_batch(job, 1, indexed=2, failures={"/data/bad.jpg": "corrupt"})
    status = tracker.status(job)
    assert status is not None
    assert (status.seen, status.enqueued, status.indexed, status.failed, status.pending) == (
        9,
        5,
        2,
        1,
        2,
    )
    assert tracker.failures(job) == {"/data/bad.jpg": "corrupt"}


def test_a_redelivered_batch_is_counted_once(tracker: JobTracker) -> None:
    job = new_job_id()
    tracker.create(job, root="/data", collection="images")
    tracker.add_batch(job, 4)
    tracker.add_batch(job, 4)
    tracker.finish_scan(job)
    assert not tracker.record_batch(job, 1, indexed=4, failures={})
    assert not tracker.record_batch(job, 1, indexed=4, failures={})
    status = tracker.status(job)
    assert status is not None and (status.indexed, status.batches_done) == (4, 1)


def test_the_last_batch_completes_the_job_exactly_once(tracker: JobTracker) -> None:
    job = new_job_id()
    tracker.create(job, root="/d", collection="c")
    tracker.add_batch(job, 1)
    tracker.finish_scan(job)
    assert tracker.record_batch(job, 1, indexed=1, failures={})
    tracker.mark_done(job)
    assert not tracker.record_batch(job, 1, indexed=1, failures={})
    status = tracker.status(job)
    assert status is not None and status.done and status.finished_at is not None


def test_batches_finishing_before_the_scan_leave_completion_to_the_producer(
    tracker: JobTracker,
) -> None:
    job = new_job_id()
    tracker.create(job, root="/d", collection="c")
    tracker.add_batch(job, 2)
    assert not tracker.record_batch(job, 1, indexed=2, failures={})
    assert tracker.finish_scan(job)


def test_recent_jobs_newest_first_and_unknown_job(tracker: JobTracker) -> None:
    first, second = new_job_id(), new_job_id()
    tracker.create(first, root="/a", collection="c")
    tracker.create(second, root="/b", collection="c")
    assert tracker.recent_jobs() == [second, first]
    assert tracker.status("000000000000") is None


def test_unreachable_redis_is_a_clear_error_without_the_password() -> None:
    with pytest.raises(ServiceUnavailableError, match=r"cannot reach Redis at redis://:\*\*\*@"):
        connect_redis("redis://:secret@127.0.0.1:1/0")
