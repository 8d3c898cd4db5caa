"""The producer's collaborators, built from the settings: job tracker, task sender, index."""

from __future__ import annotations

import functools
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from celery import Celery

from producer.enqueue import Enqueuer
from ris.contract import FINALIZE_TASK, INGEST_TASK, BatchPayload, celery_config
from ris.jobs import JobTracker, connect_redis
from ris.settings import Settings
from ris.store import VectorStore, open_store
from ris_cli.common import stderr

# Rides out a broker restart of about a minute while publishing.
PUBLISH_RETRY_POLICY = {
    "max_retries": 40,
    "interval_start": 0.5,
    "interval_step": 0.5,
    "interval_max": 3.0,
}


class Producer:
    """Sends tasks by name through Celery, keeps job records in Redis, asks Milvus what it holds."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.tracker = JobTracker(connect_redis(settings.redis_url))
        self.app = Celery("producer", set_as_current=False)
        self.app.conf.update(celery_config(settings))

    @functools.cached_property
    def store(self) -> VectorStore:
        return open_store(self.settings, retry_seconds=self.settings.outage_retry_seconds)

    def close_store(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
            del self.__dict__["store"]

    def send(self, payload: BatchPayload) -> None:
        self.app.send_task(
            INGEST_TASK,
            args=[payload.to_message()],
            # What Flower and the worker's log show for the task; celery's default, a truncated
            # repr of every path, cost more than the rest of sending the batch.
            argsrepr=f"job {payload.job} batch {payload.batch}: {len(payload.paths)} paths",
            queue=self.settings.queue,
            retry=True,
            retry_policy=PUBLISH_RETRY_POLICY,
        )

    def finalize(self, job: str) -> None:
        # Same queue as the job's batches: the workers that just ran them are known to consume it.
        self.app.send_task(
            FINALIZE_TASK,
            args=[job],
            queue=self.settings.queue,
            retry=True,
            retry_policy=PUBLISH_RETRY_POLICY,
        )

    def queue_length(self) -> int:
        """Batches waiting in the queue this producer sends to (its backpressure signal)."""
        return int(self.tracker.redis.llen(self.settings.queue))

    def enqueuer(self, skip_unchanged: bool = True) -> Enqueuer:
        return Enqueuer(
            self.tracker,
            send=self.send,
            finalize=self.finalize,
            lookup=self.store.get_file_states if skip_unchanged else None,
            queue_length=self.queue_length,
            batch_size=self.settings.batch_size,
            max_queue_length=self.settings.max_queue_length,
            compare_hash=self.settings.change_detection == "hash",
        )


class StopFlag:
    """Set by the first Ctrl-C; a second Ctrl-C aborts at once."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested


@contextmanager
def stop_on_interrupt() -> Iterator[StopFlag]:
    flag = StopFlag()
    previous = signal.getsignal(signal.SIGINT)

    def handle(signum: int, frame: FrameType | None) -> None:
        flag.requested = True
        stderr.print("stopping after the current batch; Ctrl-C again to abort")
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, handle)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
