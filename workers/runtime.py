"""Per-process heavy objects (model pipeline, index client, Redis client), built once, on demand.

Built after fork, never inherited: gRPC channels and sockets do not survive it. A warm-up thread
started with each pool process builds them ahead of the first task; the lock makes the first
task wait for that instead of building a second copy.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from ris.embedding.pipeline import EmbeddingPipeline, PathEmbedder
from ris.files.remote import Remote
from ris.index.base import VectorIndex
from ris.index.milvus import open_index
from ris.jobs.connection import connect_redis
from ris.jobs.tracker import JobTracker
from ris.settings import Settings, load_settings
from workers.ingest import IngestPolicy

log = logging.getLogger(__name__)
T = TypeVar("T")
_lock = threading.RLock()
_factories: list[Callable[[], object]] = []
PipelineFactory = Callable[[Settings], PathEmbedder]
_pipeline_factory: PipelineFactory = EmbeddingPipeline


def _once_per_process(factory: Callable[[], T]) -> Callable[[], T]:
    cached = functools.cache(factory)

    @functools.wraps(factory)
    def get() -> T:
        with _lock:
            return cached()

    _factories.append(cached)
    return get


@_once_per_process
def settings() -> Settings:
    return load_settings()


@_once_per_process
def pipeline() -> PathEmbedder:
    return _pipeline_factory(settings())


_indexes: dict[str, VectorIndex] = {}


def index(collection: str = "") -> VectorIndex:
    """The process's client of `collection` (default RIS_COLLECTION), opened on first use; a
    job names its collection, so one worker fleet can fill several."""
    current = settings()
    name = collection or current.collection
    with _lock:
        if name not in _indexes:
            _indexes[name] = open_index(
                current.model_copy(update={"collection": name}),
                retry_seconds=current.outage_retry_seconds,
            )
        return _indexes[name]


@_once_per_process
def remote() -> Remote:
    """Reads objects by URL (HEADs for their state); filesystems are made after fork."""
    return Remote(settings().fetch_options)


@_once_per_process
def tracker() -> JobTracker:
    current = settings()
    return JobTracker(connect_redis(current.redis_url, current.outage_retry_seconds, probe=False))


@_once_per_process
def policy() -> IngestPolicy:
    current = settings()
    return IngestPolicy(
        allowed_roots=current.allowed_root_list,
        hash_contents=current.change_detection == "hash",
    )


def use_pipeline(factory: PipelineFactory) -> None:
    """Build each process's pipeline with `factory` instead of the model (benchmarks do)."""
    global _pipeline_factory
    _pipeline_factory = factory
    reset()


def reset() -> None:
    """Forget every cached object (after fork, or when tests change the settings)."""
    with _lock:
        for cached in _factories:
            cached.cache_clear()  # type: ignore[attr-defined]
        _indexes.clear()


def warm_up() -> None:
    """Load the model and open the collection now, so the first batch does not wait for them."""
    try:
        pipeline()
        index().ensure_collection()
    except Exception as error:  # noqa: BLE001 - the first task will meet and report it
        log.warning("warm-up failed: %s", error)


def start_warm_up() -> None:
    threading.Thread(target=warm_up, name="warm-up", daemon=True).start()
