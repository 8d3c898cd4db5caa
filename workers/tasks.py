"""Celery tasks: thin wrappers that validate the message and call the plain functions."""

from __future__ import annotations

import logging
from typing import Any

import redis
from pymilvus import MilvusException

from ris.contract import FINALIZE_TASK, INGEST_TASK, BatchPayload
from ris.errors import InvalidPayloadError, ServiceUnavailableError
from workers import runtime
from workers.app import app
from workers.consumer import dead_letter
from workers.ingest import process_batch

log = logging.getLogger(__name__)

# Outages are retried with exponential backoff; they are never recorded as image failures.
TRANSIENT_ERRORS = (
    MilvusException,
    ServiceUnavailableError,
    redis.ConnectionError,
    redis.TimeoutError,
)


def finalize_job(job: str) -> None:
    """Make the job's vectors searchable, then mark it done."""
    runtime.store().flush()
    runtime.tracker().mark_done(job)
    log.info("job %s: done, collection flushed", job)


@app.task(
    name=INGEST_TASK,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=50,
)
def ingest_batch(payload: Any) -> dict[str, Any]:
    try:
        batch = BatchPayload.from_message(payload)
    except InvalidPayloadError as error:
        log.error("rejected malformed task: %s", error)
        dead_letter(f"malformed payload: {error}", payload)
        return {"rejected": str(error)}
    result = process_batch(batch.paths, runtime.pipeline(), runtime.store(), runtime.policy())
    completed = runtime.tracker().record_batch(
        batch.job, batch.batch, result.indexed, result.failures
    )
    log.info(
        "job %s batch %d: %d paths, %d indexed, %d failed; embed %.2f s, upsert %.2f s",
        batch.job,
        batch.batch,
        len(batch.paths),
        result.indexed,
        len(result.failures),
        result.embed_seconds,
        result.upsert_seconds,
    )
    for path, reason in result.failures.items():
        log.warning("job %s: %s: %s", batch.job, path, reason)
    if completed:
        finalize_job(batch.job)
    return {"indexed": result.indexed, "failed": len(result.failures)}


@app.task(name=FINALIZE_TASK, autoretry_for=TRANSIENT_ERRORS, retry_backoff=2, max_retries=50)
def finalize_job_task(job: Any) -> None:
    if not isinstance(job, str):
        dead_letter("malformed finalize payload: job id must be a string", job)
        return
    finalize_job(job)
