"""Per-process heavy objects (model pipeline, Milvus client, Redis client), built on first use."""

from __future__ import annotations

import functools

from ris.jobs import JobTracker, connect_redis
from ris.models import get_model_spec
from ris.pipeline import EmbeddingPipeline
from ris.settings import Settings, load_settings
from ris.store import VectorStore


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
    )


@functools.cache
def tracker() -> JobTracker:
    return JobTracker(connect_redis(settings().redis_url))


def reset() -> None:
    """Forget every cached object (after fork, or when tests change the settings)."""
    for factory in (settings, pipeline, store, tracker):
        factory.cache_clear()
