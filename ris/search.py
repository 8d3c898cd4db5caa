"""Searching by image: embed a query file with the ingestion pipeline, ask the store."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ris.errors import ImageDecodeError
from ris.identity import normalise_path
from ris.pipeline import EmbeddingPipeline
from ris.store import VectorStore


@dataclass(frozen=True)
class SearchResult:
    rank: int
    id: int
    path: str
    score: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def search_image(
    path: str, pipeline: EmbeddingPipeline, store: VectorStore, top_k: int
) -> list[SearchResult]:
    """The `top_k` indexed images most similar to the image at `path`, best first."""
    store.require_collection()
    query = normalise_path(path)
    embedded = pipeline([query])
    if embedded.failures:
        raise ImageDecodeError(f"{path}: {embedded.failures[query]}")
    hits = store.search(embedded.vectors[0], top_k)
    return [
        SearchResult(rank=rank, id=hit.id, path=hit.path, score=hit.score)
        for rank, hit in enumerate(hits, start=1)
    ]
