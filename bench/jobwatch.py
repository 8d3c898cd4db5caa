"""Watches one ingestion job in Redis: first batch taken, last batch done, queue memory."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import redis

from ris.jobs.tracker import KEY_PREFIX, JobTracker, new_job_id

# Kombu's Redis transport keeps each delivered, not yet acknowledged message in this hash.
UNACKED_KEY = "unacked"


@dataclass
class QueueSample:
    """The longest queue seen and what Redis says it costs (MEMORY USAGE ... SAMPLES 0)."""

    length: int = 0
    memory_bytes: int = 0
    message_bytes: int = 0
    message_paths: int = 0
    message_path_chars: int = 0

    @property
    def bytes_per_message(self) -> float:
        return self.memory_bytes / self.length if self.length else 0.0


def message_paths(message: bytes) -> list[str]:
    """The image paths inside one queued Celery message (a kombu envelope around the task)."""
    envelope = json.loads(message)
    body = envelope["body"]
    if envelope["properties"].get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args = json.loads(body)[0]
    return list(args[0]["paths"])


class JobWatch:
    """Polls Redis every `interval` s for the next job created after it starts: the moment a
    worker takes its first batch and the moment its last batch is counted (before the flush),
    calling `on_first` and `on_done` then; and the longest queue, with its memory."""

    def __init__(
        self,
        url: str,
        queue: str,
        on_first: Callable[[], None] = lambda: None,
        on_done: Callable[[], None] = lambda: None,
        interval: float = 0.02,
    ):
        self.client = redis.Redis.from_url(url)
        self.queue = queue
        self.interval = interval
        self.on_first, self.on_done = on_first, on_done
        self.previous = self._newest_job()
        self.job: str | None = None
        self.first_taken: float | None = None
        self.last_done: float | None = None
        self.queue_sample = QueueSample()
        self.error: Exception | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _newest_job(self) -> str | None:
        newest = cast(list[bytes], self.client.zrevrange(f"{KEY_PREFIX}:jobs", 0, 0))
        return newest[0].decode() if newest else None

    def _sample_queue(self) -> None:
        length = int(cast(Any, self.client.llen(self.queue)))
        if length <= self.queue_sample.length:
            return
        memory = self.client.memory_usage(self.queue, samples=0) or 0
        message = cast(bytes, self.client.lindex(self.queue, 0))
        paths = message_paths(message)
        chars = sum(len(path.encode()) for path in paths)
        self.queue_sample = QueueSample(length, int(memory), len(message), len(paths), chars)

    def _all_counted(self) -> bool:
        if self.job is None:
            newest = self._newest_job()
            if newest == self.previous:
                return False
            self.job = newest
        fields = cast(
            list[bytes | None],
            self.client.hmget(
                f"{KEY_PREFIX}:job:{self.job}", "scan_done", "batches", "batches_done"
            ),
        )
        scan_done, batches, done = (int(value or 0) for value in fields)
        return bool(scan_done) and done >= batches

    def _run(self) -> None:
        try:
            self._poll()
        except Exception as error:  # noqa: BLE001 - handed to the waiting thread
            self.error = error
            self._done.set()

    def _poll(self) -> None:
        while True:
            now = time.time()
            if self.first_taken is None and self.client.hlen(UNACKED_KEY):
                self.first_taken = now
                self.on_first()
            self._sample_queue()
            if self._all_counted():
                self.last_done = now
                self.on_done()
                self._done.set()
                return
            time.sleep(self.interval)

    def start(self) -> JobWatch:
        self._thread.start()
        return self

    def wait(self, timeout: float) -> tuple[str, float]:
        """The job id and seconds from its first batch taken to its last batch counted."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"job {self.job} not finished within {timeout:.0f} s")
        if self.error:
            raise RuntimeError(f"watching the job failed: {self.error}") from self.error
        assert self.job and self.first_taken and self.last_done
        return self.job, self.last_done - self.first_taken


def job_record_bytes(tracker: JobTracker, batches: int, batch_size: int) -> dict[str, float]:
    """Redis memory of one job's record after `batches` batches, written the way the producer
    and workers write it (JobTracker); the record is deleted afterwards."""
    job = new_job_id()
    tracker.create(job, "/bench", "bench")
    for _ in range(batches):
        number = tracker.add_batch(job, batch_size)
        tracker.record_batch(job, number, batch_size, {})
    keys = {"hash": f"{KEY_PREFIX}:job:{job}", "batch_set": f"{KEY_PREFIX}:job:{job}:batches"}
    sizes = {
        name: int(tracker.redis.memory_usage(key, samples=0) or 0) for name, key in keys.items()
    }
    tracker.redis.delete(*keys.values())
    tracker.redis.zrem(f"{KEY_PREFIX}:jobs", job)
    return {
        "job_hash_bytes": sizes["hash"],
        "batch_set_bytes_per_batch": sizes["batch_set"] / batches,
        "batches": batches,
    }
