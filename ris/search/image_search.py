"""Searching by image: embed the query, ask the index, verify the nearest hits geometrically."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import Any, cast

from ris.embedding.imaging import ImageSource
from ris.embedding.pipeline import EmbeddedBatch, EmbeddingPipeline
from ris.errors import ImageDecodeError
from ris.files.identity import normalise_path
from ris.files.remote import Remote
from ris.index.base import RowFilter, SearchHit, VectorIndex
from ris.search.verify import MIN_INLIERS, Pictures, inliers, local_features
from ris.settings import Settings

# Queries embedded and searched together: one inference batch and one index request (32 query
# vectors of the default model make a 330 KB request, far below Milvus' 64 MB limit).
QUERY_BATCH = 32
# A top hit this similar is the query's own picture (re-encoded, resized): verifying it would
# only confirm it. No wrong top hit on the development sets came within 0.05 of it.
SAME_PICTURE_SCORE = 0.9


@dataclass(frozen=True)
class SearchResult:
    """One ranked hit: the indexed image, its similarity, and what verification found."""

    rank: int
    id: int
    path: str
    score: float
    # Local features matching the query under one geometry; None when the hit was not checked.
    inliers: int | None = None
    # Verified as a copy (a crop, resize or edit) of the query's picture by those features.
    verified: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SearchResponse:
    """The ranked results of one search, and how long each step took."""

    results: list[SearchResult]
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class _Embedded:
    """One batch of queries as given, as searched (paths normalised), and their vectors."""

    sources: list[ImageSource]
    queries: list[ImageSource]
    batch: EmbeddedBatch[Any]
    seconds: float


@dataclass
class _Searched:
    """The index's nearest hits for each decoded query of a batch."""

    hits: list[list[SearchHit]]
    seconds: float


class ImageSearch:
    """Query images in, ranked indexed images out.

    After the vector search, spatial verification checks the `verify_top` nearest hits in
    order against the query's local features; the first that matches under one geometry (a
    crop, resize or rotation of the query's picture) moves to rank 1. A hit whose file cannot
    be read stays where it is.
    """

    def __init__(
        self,
        pipeline: EmbeddingPipeline,
        index: VectorIndex,
        verify_top: int,
        max_pixels: int,
        embed_lock: contextlib.AbstractContextManager[Any] | None = None,
        remote: Remote | None = None,
    ):
        self.pipeline = pipeline
        self.index = index
        self.verify_top = verify_top
        self.max_pixels = max_pixels
        self.embed_lock = embed_lock or contextlib.nullcontext()
        # Reads query images and indexed objects given by URL (verification reads the hits).
        self.remote = remote or Remote()
        self.pictures = Pictures(self.remote, max_pixels)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        index: VectorIndex,
        embed_lock: contextlib.AbstractContextManager[Any] | None = None,
    ) -> ImageSearch:
        # A query image by URL is held to the upload limit.
        pipeline = EmbeddingPipeline(settings, max_fetch_bytes=settings.max_upload_bytes)
        remote = Remote(replace(settings.fetch_options, max_bytes=settings.max_upload_bytes))
        return cls(pipeline, index, settings.verify_top, settings.max_pixels, embed_lock, remote)

    def __call__(
        self,
        source: ImageSource,
        top_k: int,
        where: RowFilter | None = None,
        min_score: float | None = None,
    ) -> SearchResponse:
        """The `top_k` indexed images most similar to `source` (a path or an upload's bytes)
        among the rows `where` lets through; raises ImageDecodeError if it cannot be read."""
        (outcome,) = self.search_many([source], top_k, where, min_score)
        if isinstance(outcome, ImageDecodeError):
            raise outcome
        return outcome

    def search_many(
        self,
        sources: Sequence[ImageSource],
        top_k: int,
        where: RowFilter | None = None,
        min_score: float | None = None,
    ) -> list[SearchResponse | ImageDecodeError]:
        """One outcome per source, in order: its response, or why it could not be read.

        Queries are embedded QUERY_BATCH at a time and each batch is one index request; each
        query is then verified on its own. Hits below `min_score` are dropped unless verified.
        """
        return [
            outcome
            for batch in self.search_in_batches(sources, top_k, where, min_score)
            for outcome in batch
        ]

    def search_in_batches(
        self,
        sources: Sequence[ImageSource],
        top_k: int,
        where: RowFilter | None = None,
        min_score: float | None = None,
    ) -> Iterator[list[SearchResponse | ImageDecodeError]]:
        """The outcomes of QUERY_BATCH sources at a time, in order. While the index searches one
        batch, the next one is decoded and embedded and the one before it verified."""
        with ThreadPoolExecutor(1, thread_name_prefix="index-search") as searching:
            pending: tuple[_Embedded, Future[_Searched]] | None = None
            for start in range(0, len(sources), QUERY_BATCH):
                embedded = self._embed(sources[start : start + QUERY_BATCH])
                searched = searching.submit(self._search, embedded, top_k, where)
                if pending is not None:
                    yield self._outcomes(*pending, top_k, min_score)
                pending = (embedded, searched)
            if pending is not None:
                yield self._outcomes(*pending, top_k, min_score)

    def _embed(self, sources: Sequence[ImageSource]) -> _Embedded:
        started = time.perf_counter()
        queries = [normalise_path(s) if isinstance(s, str) else s for s in sources]
        with self.embed_lock:
            batch: EmbeddedBatch[Any] = self.pipeline(cast(list[Any], queries))
        return _Embedded(list(sources), queries, batch, time.perf_counter() - started)

    def _search(self, embedded: _Embedded, top_k: int, where: RowFilter | None) -> _Searched:
        started = time.perf_counter()
        hits = self.index.search(embedded.batch.vectors, max(top_k, self.verify_top), where)
        return _Searched(hits, time.perf_counter() - started)

    def _outcomes(
        self,
        embedded: _Embedded,
        searched: Future[_Searched],
        top_k: int,
        min_score: float | None,
    ) -> list[SearchResponse | ImageDecodeError]:
        found = searched.result()
        # The batch's embedding and search time, shared evenly by its queries.
        shared = {
            "embed": embedded.seconds * 1000 / max(1, len(embedded.queries)),
            "search": found.seconds * 1000 / max(1, len(found.hits)),
        }
        hits_of_decoded = iter(found.hits)
        failures = embedded.batch.failures
        outcomes: list[SearchResponse | ImageDecodeError] = []
        for source, query in zip(embedded.sources, embedded.queries, strict=True):
            if query in failures:
                reason = failures[query]
                outcomes.append(
                    ImageDecodeError(f"{source}: {reason}" if isinstance(source, str) else reason)
                )
            else:
                outcomes.append(self._rank(query, next(hits_of_decoded), top_k, min_score, shared))
        return outcomes

    def _rank(
        self,
        query: ImageSource,
        hits: list[SearchHit],
        top_k: int,
        min_score: float | None,
        shared: dict[str, float],
    ) -> SearchResponse:
        """Verify the nearest hits, put the verified copy first, drop what scores too low."""
        started = time.perf_counter()
        checked = self._verify(query, hits)
        verified = {i for i, count in checked.items() if count >= MIN_INLIERS}
        order = sorted(range(len(hits)), key=lambda i: (i not in verified, i))
        if min_score is not None:
            order = [i for i in order if i in verified or hits[i].score >= min_score]
        results = [
            SearchResult(
                rank, hits[i].id, hits[i].path, hits[i].score, checked.get(i), i in verified
            )
            for rank, i in enumerate(order[:top_k], start=1)
        ]
        verify_ms = (time.perf_counter() - started) * 1000
        timings = {**shared, "verify": verify_ms, "total": sum(shared.values()) + verify_ms}
        return SearchResponse(results, {name: round(ms, 2) for name, ms in timings.items()})

    def _verify(self, query: ImageSource, hits: list[SearchHit]) -> dict[int, int]:
        """Inliers of the hits checked, by position, stopping at the first verified one."""
        if not hits or self.verify_top == 0 or hits[0].score >= SAME_PICTURE_SCORE:
            return {}
        try:
            query_features = local_features(self.pictures.readable(query), self.max_pixels)
        except ImageDecodeError:  # a query URL that could be read a moment ago, now cannot
            return {}
        checked: dict[int, int] = {}
        for position, hit in enumerate(hits[: self.verify_top]):
            hit_features = self.pictures.features(hit.path)
            if hit_features is None:
                continue
            checked[position] = inliers(query_features, hit_features)
            if checked[position] >= MIN_INLIERS:
                break
        return checked
