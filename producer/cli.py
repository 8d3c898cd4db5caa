"""`producer`: enqueue folders of images for indexing and follow the jobs."""

from __future__ import annotations

import os

import click
from celery import Celery

from producer.enqueue import Enqueuer, EnqueueReport
from producer.render import enqueue_progress, failures_table, follow_job, status_table
from ris.contract import FINALIZE_TASK, INGEST_TASK, BatchPayload, celery_config
from ris.jobs import JobStatus, JobTracker, connect_redis
from ris.models import get_model_spec
from ris.settings import Settings, load_settings
from ris.store import VectorStore
from ris_cli.common import (
    configure_logging,
    one_line_errors,
    print_json,
    stdout,
    verbose_option,
)


def _celery_client(settings: Settings) -> Celery:
    """A Celery app that only sends tasks by name: the producer needs no model installed."""
    app = Celery("producer", set_as_current=False)
    app.conf.update(celery_config(settings))
    return app


def _store(settings: Settings) -> VectorStore:
    return VectorStore(
        settings.milvus_uri,
        settings.collection,
        dim=get_model_spec(settings.model).dim,
        token=settings.milvus_token,
    )


def _show_status(tracker: JobTracker, status: JobStatus, as_json: bool, limit: int) -> None:
    failures = tracker.failures(status.job)
    if as_json:
        print_json({**status.as_dict(), "failures": failures})
        return
    stdout.print(status_table(status))
    if failures:
        stdout.print(failures_table(failures, limit))


@click.group()
def main() -> None:
    """Enqueue images for indexing and follow the jobs. Settings come from RIS_* variables."""


@main.command()
@click.argument("roots", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--wait", is_flag=True, help="Follow the job until every image is searchable.")
@click.option("--timeout", type=float, default=None, help="Give up waiting after SECONDS.")
@click.option("--force", is_flag=True, help="Re-embed files even when indexed unchanged.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@verbose_option
@one_line_errors
def enqueue(
    roots: tuple[str, ...],
    wait: bool,
    timeout: float | None,
    force: bool,
    as_json: bool,
    verbose: bool,
) -> None:
    """Scan ROOTS (folders or image files) and enqueue every new or changed image."""
    configure_logging(verbose)
    for root in roots:
        if not os.path.exists(root):
            raise click.ClickException(f"{root}: no such file or directory")
    settings = load_settings()
    tracker = JobTracker(connect_redis(settings.redis_url))
    store = _store(settings)
    app = _celery_client(settings)

    def send(payload: BatchPayload) -> None:
        app.send_task(INGEST_TASK, args=[payload.to_message()], queue=settings.queue)

    def finalize(job: str) -> None:
        app.send_task(FINALIZE_TASK, args=[job], queue=settings.queue)

    enqueuer = Enqueuer(
        tracker,
        send=send,
        finalize=finalize,
        lookup=None if force else store.get_file_states,
        queue_length=lambda: int(tracker.redis.llen(settings.queue)),
        batch_size=settings.batch_size,
        max_queue_length=settings.max_queue_length,
    )
    with enqueue_progress() as progress:
        bar = progress.add_task("enqueue", total=None, skipped=0)

        def on_progress(report: EnqueueReport) -> None:
            progress.update(bar, completed=report.enqueued, skipped=report.skipped)

        report = enqueuer.run(
            [os.path.abspath(root) for root in roots], settings.collection, on_progress
        )
    if not as_json:
        stdout.print(
            f"job [bold]{report.job}[/bold]: {report.enqueued} images enqueued in "
            f"{report.batches} batch{'' if report.batches == 1 else 'es'}, "
            f"{report.skipped} unchanged skipped"
            + ("" if report.enqueued else " (nothing new to index)")
        )
    if not wait:
        if as_json:
            print_json(vars(report))
        return
    status = follow_job(tracker, report.job, timeout)
    _show_status(tracker, status, as_json, limit=20)
    if not status.done:
        raise click.ClickException(f"job {report.job} not done after {timeout} s")


@main.command()
@click.argument("job", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON on stdout.")
@click.option("--limit", default=20, show_default=True, help="Failures to list.")
@one_line_errors
def status(job: str | None, as_json: bool, limit: int) -> None:
    """Show indexed / failed / pending counts and failure reasons of JOB (default: the latest)."""
    settings = load_settings()
    tracker = JobTracker(connect_redis(settings.redis_url))
    if job is None:
        recent = tracker.recent_jobs(limit=1)
        if not recent:
            raise click.ClickException("no jobs yet: run `producer enqueue` first")
        job = recent[0]
    current = tracker.status(job)
    if current is None:
        raise click.ClickException(f"no such job: {job}")
    _show_status(tracker, current, as_json, limit)
