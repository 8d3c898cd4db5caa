"""Celery tasks: thin wrappers that validate the message and call the plain functions."""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery.exceptions import Reject
from pymilvus import MilvusException

from ris.access import file_state
from ris.contract import FINALIZE_TASK, INGEST_TASK, BatchPayload
from ris.errors import InvalidPayloadError, ServiceUnavailableError
from ris.jobs import FileMemory
from workers import runtime
from workers.app import app
from workers.consumer import dead_letter
from workers.ingest import process_batch

log = logging.getLogger(__name__)

# Outages outlasting the in-process retries (RIS_OUTAGE_RETRY_SECONDS): the batch goes back to
# the queue, or stays unacknowledged for redelivery if the broker is down too. Never a failure.
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


def _ingest(batch: BatchPayload) -> dict[str, Any]:
    result = process_batch(batch.paths, runtime.pipeline(), runtime.store(), runtime.policy())
    memory = FileMemory(
        collection=runtime.settings().collection,
        indexed_paths=result.indexed,
        failed_states={path: file_state(path) for path in result.failures},
    )
    completed = runtime.tracker().record_batch(
        batch.job, batch.batch, len(result.indexed), result.failures, memory
    )
    log.info(
        "job %s batch %d: %d paths, %d indexed, %d failed; embed %.2f s, upsert %.2f s",
        batch.job,
        batch.batch,
        len(batch.paths),
        len(result.indexed),
        len(result.failures),
        result.embed_seconds,
        result.upsert_seconds,
    )
    for path, reason in result.failures.items():
        log.warning("job %s: %r: %s", batch.job, path, reason)
    if completed:
        finalize_job(batch.job)
    return {"indexed": len(result.indexed), "failed": len(result.failures)}


@app.task(name=INGEST_TASK)
def ingest_batch(payload: Any) -> dict[str, Any]:
    try:
        batch = BatchPayload.from_message(payload)
    except InvalidPayloadError as error:
        log.error("rejected malformed task: %s", error)
        dead_letter(f"malformed payload: {error}", payload)
        return {"rejected": str(error)}
    try:
        return _ingest(batch)
    except TRANSIENT_ERRORS as error:
        log.warning("job %s batch %d: %s; giving the batch back", batch.job, batch.batch, error)
        raise Reject(str(error), requeue=True) from error


@app.task(name=FINALIZE_TASK)
def finalize_job_task(job: Any) -> None:
    if not isinstance(job, str):
        dead_letter("malformed finalize payload: job id must be a string", job)
        return
    try:
        finalize_job(job)
    except TRANSIENT_ERRORS as error:
        raise Reject(str(error), requeue=True) from error
