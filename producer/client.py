"""The producer's collaborators, built from the settings: job tracker, task sender, index."""

from __future__ import annotations

import functools
from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError

from producer.enqueue import Enqueuer, RemoteStates
from ris.errors import ServiceUnavailableError
from ris.index.base import VectorIndex
from ris.index.milvus import open_index
from ris.jobs.connection import connect_redis
from ris.jobs.contract import FINALIZE_TASK, INGEST_TASK, BatchPayload, celery_config
from ris.jobs.tracker import JobTracker, SentTask, batch_task_id, finalize_task_id
from ris.settings import Settings

# Rides out a broker restart of about a minute while publishing.
PUBLISH_RETRY_POLICY = {
    "max_retries": 40,
    "interval_start": 0.5,
    "interval_step": 0.5,
    "interval_max": 3.0,
}


class Producer:
    """Sends tasks by name through Celery, keeps job records in Redis, asks the index what it
    holds. Needs no model: the workers know the tasks, the producer only their names."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.tracker = JobTracker(connect_redis(settings.redis_url))
        self.app = Celery("producer", set_as_current=False)
        self.app.conf.update(celery_config(settings))

    @functools.cached_property
    def index(self) -> VectorIndex:
        return open_index(self.settings, retry_seconds=self.settings.outage_retry_seconds)

    def close_index(self) -> None:
        if "index" in self.__dict__:
            self.index.close()
            del self.__dict__["index"]

    def _publish(self, task: str, argument: Any, task_id: str, **options: Any) -> None:
        """Send one task to this producer's queue, riding out a short broker restart. It goes
        in the ledger of tasks sent first: should the broker lose it, a worker sends it again."""
        queue = self.settings.queue
        self.tracker.remember_sent(SentTask(task_id, queue, task, argument))
        try:
            self.app.send_task(
                task,
                args=[argument],
                queue=queue,
                task_id=task_id,
                retry=True,
                retry_policy=PUBLISH_RETRY_POLICY,
                **options,
            )
        except OperationalError as error:
            raise ServiceUnavailableError(f"cannot send tasks to the broker: {error}") from None

    def send(self, payload: BatchPayload) -> None:
        # What Flower and the worker's log show for the task; Celery's default, a truncated
        # repr of every path, cost more than the rest of sending the batch.
        summary = f"job {payload.job} batch {payload.batch}: {len(payload.paths)} paths"
        task_id = batch_task_id(payload.job, payload.batch)
        self._publish(INGEST_TASK, payload.to_message(), task_id, argsrepr=summary)

    def finalize(self, job: str) -> None:
        # Same queue as the job's batches: the workers that just ran them are known to consume it.
        self._publish(FINALIZE_TASK, job, finalize_task_id(job))

    def queue_length(self) -> int:
        """Batches waiting in the queue this producer sends to (its backpressure signal)."""
        return self.tracker.queue_length(self.settings.queue)

    def enqueuer(
        self, skip_unchanged: bool = True, remote_states: RemoteStates | None = None
    ) -> Enqueuer:
        return Enqueuer(
            self.tracker,
            send=self.send,
            finalize=self.finalize,
            lookup=self.index.get_file_states if skip_unchanged else None,
            queue_length=self.queue_length,
            batch_size=self.settings.batch_size,
            max_queue_length=self.settings.max_queue_length,
            compare_hash=self.settings.change_detection == "hash",
            remote_states=remote_states,
        )
