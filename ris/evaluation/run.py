"""Whole-pipeline evaluation: `producer enqueue` and real workers index a labelled set into a
temporary collection, every query is searched like `query search`, and the results are scored."""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ris.dev.services import LocalMilvusLite, LocalRedis
from ris.dev.workers import launch_workers, stop_workers
from ris.embedding.models import get_model_spec, model_file
from ris.errors import ImageDecodeError, RisError
from ris.evaluation.eval_sets import EvalQuery, EvalSet
from ris.evaluation.metrics import MetricMeans, class_retrieval_metrics, copy_detection_metrics
from ris.index.base import VectorIndex
from ris.index.milvus import open_index
from ris.jobs.connection import connect_redis
from ris.jobs.tracker import JobTracker
from ris.search.image_search import ImageSearch, SearchResponse
from ris.search.keep_features import keep_search_features
from ris.settings import Settings, settings_environment

log = logging.getLogger(__name__)

Progress = Callable[[Iterable[EvalQuery]], Iterable[EvalQuery]]


class EvaluationError(RisError):
    """The gallery could not be indexed."""


@dataclass
class EvalReport:
    """What one evaluation measured; `metrics` holds the means over the answerable queries."""

    dataset: str
    layout: str
    model: str
    # Nearest hits each search verified by local features (RIS_VERIFY_TOP); 0 = vectors only.
    verify_top: int
    # Hits checked after those when their features are kept (RIS_VERIFY_KEPT_TOP).
    verify_kept_top: int
    # Whether a search none of whose hits verified checked its query's centre's (RIS_VERIFY_CENTRE).
    verify_centre: bool
    # Whether such a search checked the pictures pasted inside its query (RIS_VERIFY_PASTED).
    verify_pasted: bool
    # Whether hits on which 4-9 features agreed were compared pixel for pixel (RIS_VERIFY_WEAK).
    verify_weak: bool
    # Whether a search that verified nothing put first its nearest hit most alike frame to frame
    # (RIS_VERIFY_FRAMES).
    verify_frames: bool
    # Whether it then put first a hit on which 4-9 features agreed whose part under the query
    # the model scored near it (RIS_VERIFY_REGION).
    verify_region: bool
    # Whether a pasted picture's nearest hit then came first when much nearer (RIS_PASTED_NEAREST).
    pasted_nearest: bool
    # Whether the gallery's features were kept before the searches (`query features`); if not,
    # only the hits earlier searches read are kept.
    kept_features: bool
    top_k: int
    gallery: int
    indexed: int
    failed: int
    queries: int
    failed_queries: int
    unanswerable: int
    ingest_images_per_s: float
    # Pictures `query features` read and kept per second; 0 when not run.
    keep_images_per_s: float
    queries_per_s: float
    metrics: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextmanager
def embedded_services(settings: Settings, state_dir: Path) -> Iterator[Settings]:
    """A private Redis and Milvus Lite server for one run; `settings` pointed at them."""
    with LocalRedis(state_dir) as redis, LocalMilvusLite(state_dir) as milvus:
        yield settings.model_copy(update={"redis_url": redis.url, "milvus_uri": milvus.url})


def _enqueue_and_wait(root: Path, environment: dict[str, str]) -> dict[str, Any]:
    """Run `producer enqueue ROOT --wait` as a user would; the finished job's status."""
    producer = Path(sys.executable).parent / "producer"
    command = [str(producer), "enqueue", str(root), "--force", "--wait", "--json"]
    finished = subprocess.run(command, env=environment, stdout=subprocess.PIPE, text=True)
    if finished.returncode != 0:
        raise EvaluationError(f"indexing {root} failed: producer exited {finished.returncode}")
    status: dict[str, Any] = json.loads(finished.stdout)
    return status


def ingest_folder(
    root: Path, settings: Settings, workers: int, log_dir: Path
) -> tuple[int, int, float]:
    """Index a folder with real worker processes; (indexed, failed, seconds)."""
    # Converted here, once, so the workers start with it and the timing is ingestion alone.
    model_file(get_model_spec(settings.model), settings.cache_dir)
    environment = {**os.environ, **settings_environment(settings)}
    processes = launch_workers(environment, workers, log_dir, "eval")
    try:
        status = _enqueue_and_wait(root, environment)
    finally:
        stop_workers(processes)
    # From the job's creation to its last batch flushed, as the job record timed it.
    seconds = status["finished_at"] - status["created_at"]
    return status["indexed"], status["failed"], seconds


def _ranked_paths(query: EvalQuery, paths: list[str], leave_one_out: bool, k: int) -> list[str]:
    if leave_one_out:
        paths = [path for path in paths if path != query.path]
    return paths[:k]


@dataclass(frozen=True)
class ScoredQuery:
    """One query searched like `query search`: its response (None when it could not be read),
    the paths it ranks and what they score."""

    query: EvalQuery
    response: SearchResponse | None
    ranked: list[str]
    metrics: dict[str, float]


def scored_queries(
    eval_set: EvalSet,
    settings: Settings,
    index: VectorIndex,
    top_k: int,
    progress: Progress = lambda queries: queries,
) -> Iterator[ScoredQuery]:
    """Every query of the set searched through the product's `ImageSearch`, in order, and
    scored; a query that cannot be read is a miss on every metric, and is logged."""
    # Leave-one-out finds the query itself first: ask for one more.
    limit = top_k + 1 if eval_set.leave_one_out else top_k
    with ImageSearch.from_settings(settings, index) as search:
        for query in progress(eval_set.queries):
            response: SearchResponse | None
            try:
                response = search(query.path, limit)
            except ImageDecodeError as error:
                log.warning("query failed: %s", error)
                response = None
            paths = [hit.path for hit in response.results] if response else []
            ranked = _ranked_paths(query, paths, eval_set.leave_one_out, top_k)
            if eval_set.kind == "copy":
                (original,) = query.relevant
                metrics = copy_detection_metrics(ranked, original, top_k)
            else:
                metrics = class_retrieval_metrics(ranked, query.relevant, top_k)
            yield ScoredQuery(query, response, ranked, metrics)


def _score(
    eval_set: EvalSet, settings: Settings, index: VectorIndex, top_k: int, progress: Progress
) -> tuple[dict[str, float], int, float]:
    """Search every query like `query search`; (mean metrics, failed queries, queries/s)."""
    means = MetricMeans()
    started = time.perf_counter()
    failed = 0
    for scored in scored_queries(eval_set, settings, index, top_k, progress):
        means.add(**scored.metrics)
        failed += scored.response is None
    seconds = time.perf_counter() - started
    return means.means(), failed, len(eval_set.queries) / seconds


def _keep_features(settings: Settings, index: VectorIndex) -> float:
    """Keep every gallery picture's local features, as `query features` does; pictures/s."""
    report = keep_search_features(settings, index)
    return report.extracted / max(report.seconds, 1e-9)


def _clean_up(settings: Settings, index: VectorIndex) -> None:
    index.drop()
    index.close()
    JobTracker(connect_redis(settings.redis_url)).delete_queue(settings.queue)


def evaluate(
    eval_set: EvalSet,
    settings: Settings,
    top_k: int,
    workers: int,
    embedded: bool,
    keep_features: bool = False,
    progress: Progress = lambda queries: queries,
) -> EvalReport:
    """Ingest the gallery into a temporary collection, search every query, drop the collection.
    Searches keep hits' local features in a cache of the run's own, empty at the start; with
    `keep_features` the gallery's are kept before the first search."""
    run_id = secrets.token_hex(4)
    with ExitStack() as stack:
        state_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ris-eval-")))
        if embedded:
            settings = stack.enter_context(embedded_services(settings, state_dir))
        settings = settings.model_copy(
            update={
                "collection": f"eval_{run_id}",
                "queue": f"ris-eval-{run_id}",
                "feature_cache_dir": state_dir / "features",
            }
        )
        index = open_index(settings)
        stack.callback(_clean_up, settings, index)
        indexed, failed, seconds = ingest_folder(
            eval_set.gallery_root, settings, workers, state_dir
        )
        keep_rate = _keep_features(settings, index) if keep_features else 0.0
        metrics, failed_queries, query_rate = _score(eval_set, settings, index, top_k, progress)
    return EvalReport(
        dataset=str(eval_set.root),
        layout=eval_set.layout,
        model=settings.model,
        verify_top=settings.verify_top,
        verify_kept_top=settings.verify_kept_top,
        verify_centre=settings.verify_centre,
        verify_pasted=settings.verify_pasted,
        verify_weak=settings.verify_weak,
        verify_frames=settings.verify_frames,
        verify_region=settings.verify_region,
        pasted_nearest=settings.pasted_nearest,
        kept_features=keep_features,
        top_k=top_k,
        gallery=len(eval_set.gallery),
        indexed=indexed,
        failed=failed,
        queries=len(eval_set.queries),
        failed_queries=failed_queries,
        unanswerable=eval_set.unanswerable,
        ingest_images_per_s=len(eval_set.gallery) / seconds,
        keep_images_per_s=keep_rate,
        queries_per_s=query_rate,
        metrics=metrics,
    )
