"""Per-process heavy objects (model pipeline, Milvus client, Redis client), built once, on demand.

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

from ris.hold import HoldPipeline
from ris.jobs import JobTracker, connect_redis
from ris.models import get_model_spec
from ris.pipeline import EmbeddingPipeline, PathEmbedder
from ris.settings import Settings, load_settings
from ris.store import VectorStore, open_store
from workers.ingest import IngestPolicy

log = logging.getLogger(__name__)
T = TypeVar("T")
_lock = threading.RLock()
_factories: list[Callable[[], object]] = []


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
    current = settings()
    if current.benchmark_embed_seconds:
        log.warning(
            "BENCHMARK MODE (RIS_BENCHMARK_EMBED_SECONDS=%g): images are neither decoded nor "
            "embedded; each batch sleeps instead and stores made-up vectors. Never use it for "
            "a real collection.",
            current.benchmark_embed_seconds,
        )
        return HoldPipeline(current.benchmark_embed_seconds, get_model_spec(current.model).dim)
    return EmbeddingPipeline(current)


@_once_per_process
def store() -> VectorStore:
    return open_store(settings(), retry_seconds=settings().outage_retry_seconds)


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


def reset() -> None:
    """Forget every cached object (after fork, or when tests change the settings)."""
    with _lock:
        for cached in _factories:
            cached.cache_clear()  # type: ignore[attr-defined]


def warm_up() -> None:
    """Load the model and open the collection now, so the first batch does not wait for them."""
    try:
        pipeline()
        store().ensure_collection()
    except Exception as error:  # noqa: BLE001 - the first task will meet and report it
        log.warning("warm-up failed: %s", error)


def start_warm_up() -> None:
    threading.Thread(target=warm_up, name="warm-up", daemon=True).start()
