"""Per-process heavy objects (model pipeline, Milvus client, Redis client), built on first use."""

from __future__ import annotations

import functools

from ris.jobs import JobTracker, connect_redis
from ris.models import get_model_spec
from ris.pipeline import EmbeddingPipeline
from ris.settings import Settings, load_settings
from ris.store import VectorStore
from workers.ingest import IngestPolicy


@functools.cache
def settings() -> Settings:
    return load_settings()


@functools.cache
def pipeline() -> EmbeddingPipeline:
    return EmbeddingPipeline(settings())


@functools.cache
def store() -> VectorStore:
    current = settings()
    return VectorStore(
        current.milvus_uri,
        current.collection,
        dim=get_model_spec(current.model).dim,
        token=current.milvus_token,
        retry_seconds=current.outage_retry_seconds,
    )


@functools.cache
def tracker() -> JobTracker:
    current = settings()
    return JobTracker(connect_redis(current.redis_url, current.outage_retry_seconds, probe=False))


@functools.cache
def policy() -> IngestPolicy:
    current = settings()
    return IngestPolicy(
        allowed_roots=current.allowed_root_list,
        hash_contents=current.change_detection == "hash",
    )


def reset() -> None:
    """Forget every cached object (after fork, or when tests change the settings)."""
    for factory in (settings, pipeline, store, tracker, policy):
        factory.cache_clear()
