"""The task contract between producer and workers: task names, payload shape, Celery settings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ris.errors import InvalidPayloadError
from ris.settings import Settings

INGEST_TASK = "ris.ingest_batch"
FINALIZE_TASK = "ris.finalize_job"
MAX_PATHS_PER_TASK = 1024
_JOB_ID = re.compile(r"^[0-9a-f]{6,64}$")
# Milvus' rule for collection names.
_COLLECTION = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
_KEYS = {"job", "batch", "paths", "collection", "model"}


@dataclass(frozen=True)
class BatchPayload:
    """What one ingest task carries: the job it belongs to, its number, the image paths, and
    where the vectors go: the job's collection and the model it is built with. Empty (a message
    from before they were sent) means the worker's own settings."""

    job: str
    batch: int
    paths: list[str]
    collection: str = ""
    model: str = ""

    def to_message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"job": self.job, "batch": self.batch, "paths": self.paths}
        if self.collection:
            message["collection"] = self.collection
        if self.model:
            message["model"] = self.model
        return message

    @classmethod
    def from_message(cls, message: Any) -> BatchPayload:
        """Validate an incoming message; raise InvalidPayloadError naming what is wrong."""
        if not isinstance(message, dict):
            raise InvalidPayloadError(f"payload must be an object, got {type(message).__name__}")
        unknown = set(message) - _KEYS
        if unknown:
            raise InvalidPayloadError(f"unknown payload keys: {sorted(unknown)}")
        job, batch, paths = message.get("job"), message.get("batch"), message.get("paths")
        collection, model = message.get("collection", ""), message.get("model", "")
        if not isinstance(job, str) or not _JOB_ID.match(job):
            raise InvalidPayloadError(f"invalid job id: {job!r}")
        if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
            raise InvalidPayloadError(f"invalid batch number: {batch!r}")
        if not isinstance(paths, list) or not all(isinstance(p, str) and p for p in paths):
            raise InvalidPayloadError("paths must be a list of non-empty strings")
        if len(paths) > MAX_PATHS_PER_TASK:
            raise InvalidPayloadError(
                f"too many paths: {len(paths)} (at most {MAX_PATHS_PER_TASK} per task)"
            )
        if not isinstance(collection, str) or (collection and not _COLLECTION.match(collection)):
            raise InvalidPayloadError(f"invalid collection name: {collection!r}")
        if not isinstance(model, str) or len(model) > 200:
            raise InvalidPayloadError(f"invalid model name: {model!r}")
        return cls(job=job, batch=batch, paths=paths, collection=collection, model=model)


def broker_transport_options(visibility_timeout: int) -> dict[str, Any]:
    """Redis transport options: redeliver a dead worker's batch soon after its visibility timeout.

    Kombu's defaults sweep for abandoned messages only every 100 s and hold the sweep's lock for
    5 minutes, which leaves a batch stranded long after a worker or Redis restart.
    """
    return {
        "visibility_timeout": visibility_timeout,
        "unacked_restore_interval": max(1, min(10, visibility_timeout // 4)),
        "unacked_restore_throttle": 1,
        "unacked_mutex_expire": max(10, min(300, visibility_timeout)),
        "socket_timeout": 30,
        "socket_connect_timeout": 5,
    }


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings shared by the producer and the workers (JSON only, late acks)."""
    return {
        "broker_url": settings.redis_url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": broker_transport_options(settings.visibility_timeout),
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "task_ignore_result": True,
        "result_backend": None,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_concurrency": settings.worker_concurrency,
        "task_default_queue": settings.queue,
        "worker_hijack_root_logger": False,
        "broker_connection_timeout": 5,
    }
