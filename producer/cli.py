"""`producer`: enqueue folders of images for indexing, follow the jobs, keep the index in sync."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO

import click

from producer.client import Producer
from producer.enqueue import EnqueueReport
from producer.interrupt import stop_on_interrupt
from producer.prune import PruneReport
from producer.prune import prune as prune_index
from producer.render import (
    dead_letters_table,
    enqueue_progress,
    enqueue_summary,
    failures_table,
    follow_job,
    prune_summary,
    status_table,
)
from ris.files.identity import display_path, is_url, normalise_path
from ris.files.remote import ListedStates, Remote, read_url_list
from ris.files.scan import iter_image_paths
from ris.jobs.tracker import JobStatus
from ris.settings import load_settings
from ris_cli.errors import one_line_errors
from ris_cli.options import (
    collection_option,
    json_option,
    queue_option,
    timeout_option,
    verbose_option,
    wait_option,
)
from ris_cli.output import configure_logging, print_json, stderr, stdout


def _producer(queue: str | None = None, collection: str | None = None) -> Producer:
    """A producer from the settings, sending to `queue` instead of RIS_QUEUE and indexing into
    `collection` instead of RIS_COLLECTION when given."""
    settings = load_settings()
    if queue is not None:
        settings = settings.model_copy(update={"queue": queue})
    if collection is not None:
        settings = settings.model_copy(update={"collection": collection})
    return Producer(settings)


def _show_status(producer: Producer, status: JobStatus, as_json: bool, limit: int) -> None:
    failures = {
        display_path(p): reason for p, reason in producer.tracker.failures(status.job).items()
    }
    if as_json:
        print_json({**status.as_dict(), "failures": failures})
        return
    stdout.print(status_table(status))
    if failures:
        stdout.print(failures_table(failures, limit))


def _run_job(
    producer: Producer,
    paths: Iterable[str],
    label: str,
    skip_unchanged: bool,
    wait: bool,
    timeout: float | None,
    as_json: bool,
    remote_states: ListedStates | None = None,
) -> None:
    """Enqueue `paths` as one job with a progress bar, then report or follow it."""
    with stop_on_interrupt() as stop, enqueue_progress() as progress:
        bar = progress.add_task("enqueue", total=None, skipped=0)

        def on_progress(report: EnqueueReport) -> None:
            progress.update(bar, completed=report.enqueued, skipped=report.skipped)

        report = producer.enqueuer(skip_unchanged, remote_states).run(
            paths,
            label,
            producer.settings.collection,
            on_progress,
            should_stop=stop,
            model=producer.settings.model,
        )
    if not as_json:
        stdout.print(enqueue_summary(report))
    # Following the job needs only Redis; an idle gRPC channel would just send keepalives.
    producer.close_index()
    if report.interrupted:
        raise SystemExit(130)
    if not wait:
        if as_json:
            print_json(report.as_dict())
        return
    status = follow_job(producer.tracker, report.job, timeout)
    _show_status(producer, status, as_json, limit=20)
    if not status.done:
        raise click.ClickException(f"job {report.job} not done after {timeout} s")


@click.group()
def main() -> None:
    """Enqueue images for indexing and follow the jobs. Settings come from RIS_* variables."""


@main.command()
@click.argument("roots", nargs=-1, type=click.Path(path_type=str))
@click.option(
    "--urls",
    "url_list",
    type=click.File("r"),
    help="Also enqueue the image URLs in this file, one a line (`-`: standard input).",
)
@wait_option
@timeout_option
@click.option("--force", is_flag=True, help="Re-embed files even when indexed unchanged.")
@queue_option
@collection_option
@json_option
@verbose_option
@one_line_errors
def enqueue(
    roots: tuple[str, ...],
    url_list: TextIO | None,
    wait: bool,
    timeout: float | None,
    force: bool,
    queue: str | None,
    collection: str | None,
    as_json: bool,
    verbose: bool,
) -> None:
    """Scan ROOTS (folders, image files, or URLs such as s3://bucket/prefix) and enqueue every
    new or changed image."""
    configure_logging(verbose)
    if not roots and url_list is None:
        raise click.ClickException("name a folder, file or URL to enqueue, or --urls FILE")
    for root in roots:
        if not is_url(root) and not os.path.exists(root):
            raise click.ClickException(f"{root}: no such file or directory")
    producer = _producer(queue, collection)
    remote = Remote(producer.settings.fetch_options)
    states = ListedStates(remote)
    absolute = [normalise_path(root) for root in roots]

    def paths() -> Iterator[str]:
        for root in absolute:
            if is_url(root):
                yield from remote.list_images(root, states.known)
            else:
                yield from iter_image_paths(root)
        if url_list is not None:
            yield from read_url_list(url_list)

    label = os.pathsep.join(absolute + ([f"--urls {url_list.name}"] if url_list else []))
    _run_job(producer, paths(), label, not force, wait, timeout, as_json, states)


@main.command()
@click.argument("job")
@wait_option
@timeout_option
@queue_option
@json_option
@verbose_option
@one_line_errors
def retry(
    job: str, wait: bool, timeout: float | None, queue: str | None, as_json: bool, verbose: bool
) -> None:
    """Enqueue again the images that failed in JOB, as a new job into JOB's collection."""
    configure_logging(verbose)
    producer = _producer(queue)
    original = producer.tracker.require_status(job)
    if original.collection and original.collection != producer.settings.collection:
        producer = _producer(queue, original.collection)
    failed = list(producer.tracker.failures(job))
    _run_job(producer, failed, f"retry of {job}", False, wait, timeout, as_json)


@main.command()
@click.argument("job", required=False)
@json_option
@click.option("--limit", default=20, show_default=True, help="Failures to list.")
@one_line_errors
def status(job: str | None, as_json: bool, limit: int) -> None:
    """Show indexed / failed / pending counts and failure reasons of JOB (default: the latest)."""
    producer = _producer()
    if job is None:
        recent = producer.tracker.recent_jobs(limit=1)
        if not recent:
            raise click.ClickException("no jobs yet: run `producer enqueue` first")
        job = recent[0]
    _show_status(producer, producer.tracker.require_status(job), as_json, limit)


@main.command()
@click.argument("root", type=click.Path(path_type=str))
@click.option("--dry-run", is_flag=True, help="List what would be removed, remove nothing.")
@json_option
@one_line_errors
def prune(root: str, dry_run: bool, as_json: bool) -> None:
    """Remove from the index the images under ROOT (a folder or URL prefix) that are gone."""
    producer = _producer()
    exists: Callable[[str], bool] = os.path.exists
    if is_url(root):
        remote = Remote(producer.settings.fetch_options)
        exists = set(remote.list_images(root, {}, missing_ok=True)).__contains__
    report = prune_index(producer.index, root, dry_run=dry_run, exists=exists)
    removed = [display_path(path) for path in report.removed]
    if as_json:
        print_json(
            {"root": report.root, "checked": report.checked, "removed": removed, "dry_run": dry_run}
        )
        return
    stdout.print(prune_summary(report, dry_run), markup=False)


def _print_watch_report(report: EnqueueReport | PruneReport, as_json: bool) -> None:
    """One line (or one JSON object) per job the watch sent or prune it ran."""
    if isinstance(report, PruneReport):
        removed = [display_path(path) for path in report.removed]
        if as_json:
            click.echo(json.dumps({"event": "pruned", "removed": removed}, ensure_ascii=False))
        else:
            stdout.print(prune_summary(report), markup=False)
    elif as_json:
        click.echo(json.dumps({"event": "enqueued", **report.as_dict()}))
    else:
        stdout.print(enqueue_summary(report))


@main.command()
@click.argument("roots", nargs=-1, required=True, type=click.Path(path_type=str))
@queue_option
@collection_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object a line on stdout.")
@verbose_option
@one_line_errors
def watch(
    roots: tuple[str, ...],
    queue: str | None,
    collection: str | None,
    as_json: bool,
    verbose: bool,
) -> None:
    """Follow ROOTS (folders, URL prefixes such as s3://bucket/prefix) until Ctrl-C: enqueue new
    and changed images (files once they settle, RIS_WATCH_SETTLE_SECONDS), prune deleted ones;
    rescan folders and list URL prefixes every RIS_WATCH_RESCAN_SECONDS."""
    from producer.watch import Watcher, split_roots  # watchdog only where it watches

    configure_logging(verbose)
    split_roots(roots, load_settings().watch_rescan_seconds)  # before connecting anywhere
    producer = _producer(queue, collection)
    settings = producer.settings
    watcher = Watcher(
        producer,
        roots,
        settings.watch_settle_seconds,
        settings.watch_rescan_seconds,
        on_report=lambda report: _print_watch_report(report, as_json),
    )
    with stop_on_interrupt() as stop:
        if not as_json:
            urls = f", {len(watcher.urls)} URL prefix(es) listed every {watcher.rescan_seconds:g} s"
            folders = f"{len(watcher.folders)} folder(s)"
            stderr.print(f"watching {folders}{urls if watcher.urls else ''}; Ctrl-C to stop")
        watcher.run(stop)
    stderr.print("stopped; a restart picks up whatever changed meanwhile")


@main.command("dead-letters")
@json_option
@click.option("--limit", default=20, show_default=True, help="Entries to show, newest first.")
@one_line_errors
def dead_letters(as_json: bool, limit: int) -> None:
    """Show task messages the workers refused (malformed, undecodable, unknown), with reasons."""
    entries = _producer().tracker.dead_letters(limit)
    if as_json:
        print_json(entries)
    else:
        stdout.print(dead_letters_table(entries))
