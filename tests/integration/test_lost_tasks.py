"""The ledger of tasks sent and the sweep that sends again what the broker lost, on a real Redis
with messages sent by the producer's own Celery app."""

from __future__ import annotations

import json
import time

import pytest
import redis

from producer.client import Producer
from ris.jobs.contract import BatchPayload
from ris.jobs.lost_tasks import LostTaskSweep, message_task_id
from ris.jobs.tracker import JobTracker, SentTask, batch_task_id, finalize_task_id, new_job_id
from ris.settings import Settings

GRACE = 0.3


@pytest.fixture
def producer(redis_url: str) -> Producer:
    return Producer(Settings(redis_url=redis_url, queue="lost-tasks"))


def send_job(producer: Producer, batches: int) -> str:
    """A job of `batches` batches sent through the producer, as `producer enqueue` sends them."""
    job = new_job_id()
    producer.tracker.create(job, root="/data", collection="images")
    for _ in range(batches):
        number = producer.tracker.add_batch(job, 1)
        producer.send(BatchPayload(job, number, [f"/data/{number}.jpg"]))
    return job


def queued_ids(client: redis.Redis, queue: str) -> list[str]:
    return sorted(
        task_id
        for raw in client.lrange(queue, 0, -1)
        if (task_id := message_task_id(json.loads(raw)))
    )


def sweeper(producer: Producer) -> LostTaskSweep:
    def send(task: SentTask) -> None:
        producer.app.send_task(
            task.task, args=[task.argument], queue=task.queue, task_id=task.task_id
        )

    return LostTaskSweep(producer.tracker, GRACE, send)


def sweep_twice(sweep: LostTaskSweep) -> tuple[list[SentTask], list[SentTask]]:
    """The first look finds what is missing; the second, past the grace, sends it again."""
    first = sweep.sweep()
    time.sleep(GRACE + 0.1)
    return first, sweep.sweep()


def test_a_task_the_broker_lost_is_sent_again_once_after_the_grace(producer: Producer) -> None:
    job = send_job(producer, 3)
    client = producer.tracker.redis
    ids = [batch_task_id(job, number) for number in (1, 2, 3)]
    assert queued_ids(client, "lost-tasks") == ids
    assert sorted(producer.tracker.sent_tasks()) == ids
    lost = client.rpop("lost-tasks")  # what a worker popping at the instant Redis stops loses
    assert lost is not None and message_task_id(json.loads(lost)) == ids[0]
    sweep = sweeper(producer)
    first, second = sweep_twice(sweep)
    assert first == []
    assert [task.task_id for task in second] == [ids[0]]
    assert second[0].argument == {"job": job, "batch": 1, "paths": ["/data/1.jpg"]}
    assert queued_ids(client, "lost-tasks") == ids
    time.sleep(GRACE + 0.1)
    assert sweep.sweep() == []  # queued again: nothing more to send


def test_a_task_held_unacknowledged_or_done_is_not_sent_again(producer: Producer) -> None:
    job = send_job(producer, 2)
    client = producer.tracker.redis
    # Batch 1 taken by a worker: kombu keeps it as [message, exchange, routing key].
    held = client.rpop("lost-tasks")
    assert held is not None
    client.hset("unacked", "delivery-tag-1", json.dumps([json.loads(held), "", "lost-tasks"]))
    # Batch 2 done: counted, out of the ledger, its message gone with the ack.
    assert client.rpop("lost-tasks") is not None
    producer.tracker.record_batch(job, 2, indexed=1, failures={})
    assert list(producer.tracker.sent_tasks()) == [batch_task_id(job, 1)]
    assert sweep_twice(sweeper(producer)) == ([], [])


def test_a_task_counted_by_a_worker_from_before_the_ledger_is_forgotten_not_sent(
    producer: Producer,
) -> None:
    """Such a worker counts its batch without taking it out of the ledger."""
    job = send_job(producer, 1)
    entry = producer.tracker.sent_tasks()[batch_task_id(job, 1)]
    assert producer.tracker.redis.rpop("lost-tasks") is not None
    producer.tracker.record_batch(job, 1, indexed=1, failures={})
    producer.tracker.remember_sent(entry)
    assert sweep_twice(sweeper(producer)) == ([], [])
    assert producer.tracker.sent_tasks() == {}
    assert producer.tracker.queue_length("lost-tasks") == 0


def test_a_task_missing_for_a_moment_is_not_sent_again(producer: Producer) -> None:
    """Between two places (popped and not yet recorded as unacknowledged, or on its way back
    to its queue) a task is missing for a moment: it must be missing on every look, for the
    whole grace, to be taken as lost."""
    send_job(producer, 1)
    client = producer.tracker.redis
    sweep = sweeper(producer)
    message = client.rpop("lost-tasks")
    assert message is not None and sweep.sweep() == []
    client.lpush("lost-tasks", message)
    time.sleep(GRACE + 0.1)
    assert sweep.sweep() == []
    client.rpop("lost-tasks")
    assert sweep.sweep() == []  # missing again: its grace starts again


def test_only_one_worker_sweeps_in_an_interval(producer: Producer) -> None:
    job = send_job(producer, 1)
    producer.tracker.redis.rpop("lost-tasks")
    first, second = sweeper(producer), sweeper(producer)
    assert first.try_sweep(interval_seconds=5) == []
    time.sleep(GRACE + 0.1)
    assert second.try_sweep(interval_seconds=5) == []  # the first holds the interval
    assert [task.task_id for task in first.sweep()] == [batch_task_id(job, 1)]


def test_the_ledger_forgets_a_done_job_s_finalize_and_a_deleted_queue(producer: Producer) -> None:
    job = send_job(producer, 2)
    producer.finalize(job)
    tracker: JobTracker = producer.tracker
    assert finalize_task_id(job) in tracker.sent_tasks()
    tracker.mark_done(job)
    assert finalize_task_id(job) not in tracker.sent_tasks()
    tracker.remember_sent(SentTask("other.1", "another-queue", "ris.ingest_batch", {}))
    tracker.delete_queue("lost-tasks")
    assert list(tracker.sent_tasks()) == ["other.1"]
    assert tracker.queue_length("lost-tasks") == 0
