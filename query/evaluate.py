"""`query eval`: ingest a labelled set through producer, workers and Milvus, search it, score it."""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.progress import track
from rich.table import Table

from producer.render import follow_job
from producer.wiring import Producer
from query.eval_sets import EvalQuery, EvalSet
from ris.convert import ensure_onnx_model
from ris.errors import ImageDecodeError
from ris.local import LocalMilvusLite, LocalRedis, launch_workers, stop_workers
from ris.metrics import MetricMeans, class_retrieval_metrics, copy_detection_metrics
from ris.search import ImageSearch
from ris.settings import Settings, settings_environment
from ris_cli.common import stderr


@dataclass
class EvalReport:
    """What one evaluation measured; `metrics` holds the means over the answerable queries."""

    dataset: str
    layout: str
    model: str
    # Nearest hits each search verified by local features (RIS_VERIFY_TOP); 0 = vectors only.
    verify_top: int
    top_k: int
    gallery: int
    indexed: int
    failed: int
    queries: int
    failed_queries: int
    unanswerable: int
    ingest_images_per_s: float
    queries_per_s: float
    metrics: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextmanager
def embedded_services(settings: Settings, state_dir: Path) -> Iterator[Settings]:
    """A private Redis and Milvus Lite server for one run; `settings` pointed at them."""
    with LocalRedis(state_dir) as redis, LocalMilvusLite(state_dir) as milvus:
        yield settings.model_copy(update={"redis_url": redis.url, "milvus_uri": milvus.url})


def _ingest(
    eval_set: EvalSet, producer: Producer, workers: int, log_dir: Path
) -> tuple[int, int, float]:
    """Index the gallery with real worker processes; (indexed, failed, images per second)."""
    settings = producer.settings
    # Converted here, once, so the workers start with it and the timing is ingestion alone.
    ensure_onnx_model(settings.model, settings.cache_dir)
    environment = {**os.environ, **settings_environment(settings)}
    processes = launch_workers(environment, workers, log_dir, "eval")
    try:
        started = time.perf_counter()
        report = producer.enqueuer(skip_unchanged=False).run(
            eval_set.gallery, str(eval_set.root), settings.collection
        )
        status = follow_job(producer.tracker, report.job, timeout=None)
        seconds = time.perf_counter() - started
    finally:
        stop_workers(processes)
    return status.indexed, status.failed, len(eval_set.gallery) / seconds


def _ranked_paths(query: EvalQuery, paths: list[str], leave_one_out: bool, k: int) -> list[str]:
    if leave_one_out:
        paths = [path for path in paths if path != query.path]
    return paths[:k]


def _score(
    eval_set: EvalSet, producer: Producer, top_k: int
) -> tuple[dict[str, float], int, float]:
    """Search every query like `query search`; (mean metrics, failed queries, queries/s)."""
    search = ImageSearch.from_settings(producer.settings, producer.store)
    means = MetricMeans()
    # Leave-one-out finds the query itself first: ask for one more.
    limit = top_k + 1 if eval_set.leave_one_out else top_k
    started = time.perf_counter()
    failed = 0
    for query in track(eval_set.queries, description="searching", console=stderr):
        try:
            hits = search(query.path, limit).results
        except ImageDecodeError as error:
            # A query that cannot be read is a miss on every metric, and is reported.
            stderr.print(f"query failed: {error}")
            failed += 1
            hits = []
        ranked = _ranked_paths(query, [hit.path for hit in hits], eval_set.leave_one_out, top_k)
        if eval_set.kind == "copy":
            (original,) = query.relevant
            means.add(**copy_detection_metrics(ranked, original, top_k))
        else:
            means.add(**class_retrieval_metrics(ranked, query.relevant, top_k))
    seconds = time.perf_counter() - started
    return means.means(), failed, len(eval_set.queries) / seconds


def _clean_up(producer: Producer) -> None:
    producer.store.drop()
    producer.close_store()
    producer.tracker.redis.delete(producer.settings.queue)


def evaluate(
    eval_set: EvalSet, settings: Settings, top_k: int, workers: int, embedded: bool
) -> EvalReport:
    """Ingest the gallery into a temporary collection, search every query, drop the collection."""
    run_id = secrets.token_hex(4)
    with ExitStack() as stack:
        state_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ris-eval-")))
        if embedded:
            settings = stack.enter_context(embedded_services(settings, state_dir))
        settings = settings.model_copy(
            update={"collection": f"eval_{run_id}", "queue": f"ris-eval-{run_id}"}
        )
        producer = Producer(settings)
        stack.callback(_clean_up, producer)
        indexed, failed, ingest_rate = _ingest(eval_set, producer, workers, state_dir)
        metrics, failed_queries, query_rate = _score(eval_set, producer, top_k)
    return EvalReport(
        dataset=str(eval_set.root),
        layout=eval_set.layout,
        model=settings.model,
        verify_top=settings.verify_top,
        top_k=top_k,
        gallery=len(eval_set.gallery),
        indexed=indexed,
        failed=failed,
        queries=len(eval_set.queries),
        failed_queries=failed_queries,
        unanswerable=eval_set.unanswerable,
        ingest_images_per_s=ingest_rate,
        queries_per_s=query_rate,
        metrics=metrics,
    )


def evaluation_table(report: EvalReport) -> Table:
    """The report as a two-column table: what was measured, and the figure."""
    table = Table(title=f"{report.dataset} ({report.layout})", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [
        ("model", report.model),
        ("spatial verification", f"top {report.verify_top}" if report.verify_top else "off"),
        ("gallery images (indexed / failed)", f"{report.indexed} / {report.failed}"),
        ("queries (failed to read)", f"{report.queries} ({report.failed_queries})"),
        *[(name, f"{value:.4f}") for name, value in report.metrics.items()],
        ("ingestion, images/s", f"{report.ingest_images_per_s:.1f}"),
        ("queries/s (embed + search + verify)", f"{report.queries_per_s:.1f}"),
    ]
    if report.unanswerable:
        rows.insert(3, ("queries left out (no right answer)", str(report.unanswerable)))
    for name, value in rows:
        table.add_row(name, value)
    return table
