"""How the producer shows a job: a counts table, a failures table, a progress bar."""

from __future__ import annotations

import time
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from producer.enqueue import EnqueueReport
from producer.prune import PruneReport
from ris.files.identity import display_path
from ris.jobs.tracker import JobStatus, JobTracker
from ris_cli.output import stderr


def status_table(status: JobStatus) -> Table:
    table = Table(title=f"job {status.job}", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    elapsed = (status.finished_at or time.time()) - status.created_at
    for label, value in (
        ("state", status.state + (" (scan interrupted)" if status.interrupted else "")),
        ("seen", status.seen),
        ("indexed", status.indexed),
        ("failed", status.failed),
        ("skipped (unchanged)", status.skipped),
        ("pending", status.pending),
        ("batches done", f"{status.batches_done}/{status.batches}"),
        ("elapsed", f"{elapsed:.1f} s"),
        ("collection", status.collection),
        ("root", status.root),
    ):
        table.add_row(label, str(value))
    return table


def failures_table(failures: dict[str, str], limit: int) -> Table:
    table = Table(title=f"failures ({len(failures)})", title_justify="left")
    table.add_column("path", overflow="fold")
    table.add_column("reason", overflow="fold")
    for path, reason in list(failures.items())[:limit]:
        table.add_row(path, reason)
    if len(failures) > limit:
        table.add_row(f"... {len(failures) - limit} more", "")
    return table


def enqueue_summary(report: EnqueueReport) -> str:
    """One line saying what a job sent: `job ID: N images enqueued in B batches, ...`."""
    batches = f"{report.batches} batch{'' if report.batches == 1 else 'es'}"
    return (
        f"job [bold]{report.job}[/bold]: {report.enqueued} images enqueued in {batches}, "
        f"{report.skipped} unchanged skipped"
        + ("" if report.enqueued else " (nothing new to index)")
        + (" (interrupted: run the command again to finish)" if report.interrupted else "")
    )


def prune_summary(report: PruneReport, dry_run: bool = False, limit: int = 20) -> str:
    """What a prune removed: a count line, then up to `limit` paths."""
    verb = "would remove" if dry_run else "removed"
    checked = f"{report.checked} indexed images checked"
    lines = [f"{report.root}: {checked}, {verb} {len(report.removed)}"]
    lines += [f"  {display_path(path)}" for path in report.removed[:limit]]
    return "\n".join(lines)


def dead_letters_table(entries: list[dict[str, Any]]) -> Table:
    table = Table(title=f"dead letters ({len(entries)} shown, newest first)", title_justify="left")
    table.add_column("when")
    table.add_column("reason", overflow="fold")
    table.add_column("message", overflow="fold", max_width=60)
    for entry in entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry["at"]))
        table.add_row(when, entry["reason"], entry["body"])
    return table


def enqueue_progress() -> Progress:
    return Progress(
        TextColumn("[bold]enqueued"),
        MofNCompleteColumn(),
        TextColumn("paths, {task.fields[skipped]} unchanged skipped"),
        TimeElapsedColumn(),
        console=stderr,
        transient=False,
    )


def follow_job(
    tracker: JobTracker, job: str, timeout: float | None, poll: float = 0.5
) -> JobStatus:
    """Show a progress bar until the job is done (or `timeout` seconds pass); return its status."""
    deadline = None if timeout is None else time.monotonic() + timeout
    columns = (
        TextColumn("[bold]indexing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=stderr) as progress:
        task = progress.add_task("job", total=None, failed=0)
        while True:
            status = tracker.require_status(job)
            progress.update(
                task,
                total=status.seen,
                completed=status.indexed + status.failed + status.skipped,
                failed=status.failed,
            )
            if status.done or (deadline is not None and time.monotonic() > deadline):
                return status
            time.sleep(poll)
