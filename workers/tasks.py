"""Celery tasks: thin wrappers that validate the message and call the plain functions.

What goes wrong in a task is one of two kinds (see ris.errors). An outage that outlasts the
in-process retries (RIS_OUTAGE_RETRY_SECONDS) gives the batch back to the queue, or leaves it
unacknowledged for redelivery if the broker is down too: nothing is lost. Anything else cannot
succeed by trying again: the batch's images are recorded as failed with the reason, and the
job goes on to completion.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.exceptions import Reject

from ris.errors import InvalidPayloadError, ModelMismatchError, RisError, TransientError
from ris.files.changes import file_state
from ris.jobs.contract import FINALIZE_TASK, INGEST_TASK, BatchPayload
from ris.jobs.tracker import FailedFiles
from workers import runtime
from workers.app import app
from workers.consumer import dead_letter
from workers.ingest import process_batch

log = logging.getLogger(__name__)


def finalize_job(job: str) -> None:
    """Make the job's vectors searchable, then mark it done."""
    status = runtime.tracker().status(job)
    try:
        runtime.index(status.collection if status else "").flush()
    except TransientError:
        raise
    except RisError as error:
        # The job's batches are all accounted for; a flush that cannot succeed must not hold
        # the job open forever. Milvus seals the segments on its own schedule.
        log.error("job %s: flush failed: %s", job, error)
    runtime.tracker().mark_done(job)
    log.info("job %s: done, collection flushed", job)


def _record(
    batch: BatchPayload,
    indexed: list[str],
    failures: dict[str, str],
    remembered: dict[str, str],
    states: dict[str, tuple[int, int]] | None = None,
) -> None:
    """Count the batch once; `remembered` failures join the collection's failed-file record,
    each with its state (`states` for URLs, stat'ed for files)."""
    states = states or {}
    failed_files = FailedFiles(
        collection=batch.collection or runtime.settings().collection,
        indexed_paths=indexed,
        failures=remembered,
        failed_states={path: states.get(path) or file_state(path) for path in remembered},
    )
    completed = runtime.tracker().record_batch(
        batch.job, batch.batch, len(indexed), failures, failed_files
    )
    for path, reason in failures.items():
        log.warning("job %s: %r: %s", batch.job, path, reason)
    if completed:
        finalize_job(batch.job)


def _ingest(batch: BatchPayload) -> None:
    model = runtime.settings().model
    if batch.model and batch.model != model:
        # A fleet that runs several models must route each model's jobs to its own queue.
        raise ModelMismatchError(
            f"this worker runs model {model}, the job was enqueued for {batch.model} "
            "(give the workers of each model their own RIS_QUEUE, or the same RIS_MODEL)"
        )
    index = runtime.index(batch.collection)
    result = process_batch(
        batch.paths, runtime.pipeline(), index, runtime.policy(), runtime.remote()
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
    _record(batch, result.indexed, result.failures, result.file_failures, result.failed_states)


def _fail_batch(batch: BatchPayload, error: Exception) -> None:
    """Record every image of a batch that cannot succeed as failed, with the reason."""
    if isinstance(error, RisError):
        reason = str(error).splitlines()[0]
    else:
        log.exception("job %s batch %d: unexpected error", batch.job, batch.batch)
        reason = f"internal error: {type(error).__name__}: {error}"
    log.error("job %s batch %d failed: %s", batch.job, batch.batch, reason)
    _record(batch, [], dict.fromkeys(batch.paths, reason), {})


@app.task(name=INGEST_TASK)
def ingest_batch(payload: Any) -> None:
    try:
        batch = BatchPayload.from_message(payload)
    except InvalidPayloadError as error:
        log.error("rejected malformed task: %s", error)
        dead_letter(f"malformed payload: {error}", payload)
        return
    try:
        try:
            _ingest(batch)
        except TransientError:
            raise
        except Exception as error:  # noqa: BLE001 - a batch that cannot succeed ends as failed
            _fail_batch(batch, error)
    except TransientError as error:
        log.warning("job %s batch %d: %s; giving the batch back", batch.job, batch.batch, error)
        raise Reject(str(error), requeue=True) from error


@app.task(name=FINALIZE_TASK)
def finalize_job_task(job: Any) -> None:
    if not isinstance(job, str):
        dead_letter("malformed finalize payload: job id must be a string", job)
        return
    try:
        finalize_job(job)
    except TransientError as error:
        raise Reject(str(error), requeue=True) from error
