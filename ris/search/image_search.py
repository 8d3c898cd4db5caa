"""Searching by image: embed the query, ask the index, verify the nearest hits geometrically."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import Any, cast

import numpy as np

from ris.embedding.imaging import ImageSource
from ris.embedding.pipeline import EmbeddedBatch, EmbeddingPipeline
from ris.errors import ImageDecodeError
from ris.files.identity import normalise_path
from ris.files.remote import Remote
from ris.index.base import RowFilter, SearchHit, VectorIndex
from ris.search.feature_cache import FeatureCache, KeptFeatures, open_feature_cache
from ris.search.pasted_pictures import pasted_pictures
from ris.search.query_centre import query_centre
from ris.search.region_vectors import (
    REGION_COMPARED,
    REGION_COVER,
    REGION_SCORE,
    png_bytes,
    region_under,
)
from ris.search.same_picture import WEAK_INLIERS, compared
from ris.search.verify import (
    MAX_FEATURES,
    MAX_SIDE,
    MIN_INLIERS,
    LocalFeatures,
    Match,
    Pictures,
    QueryView,
    match,
    query_views,
)
from ris.search.whole_frames import frames_compared
from ris.settings import Settings

# Queries embedded and searched together: one inference batch and one index request (32 query
# vectors of the default model make a 330 KB request, far below Milvus' 64 MB limit).
QUERY_BATCH = 32
# A top hit this similar is the query's own picture (re-encoded, resized): verifying it would
# only confirm it. No wrong top hit on the development sets came within 0.05 of it.
SAME_PICTURE_SCORE = 0.9
# Hits on which 4-9 features agree that a search reads and compares pixel for pixel, at most, in
# order. On augly-hard (exact search, a one-off), 24 of the 25 confirmed were among the first 5
# such hits (20 the first), while searches that confirmed none had up to 22 of them to read
# (docs/BENCHMARKS.md, "Hits on which few features agree").
WEAK_COMPARED = 5
# Nearest hits a search that verified nothing compares with the query frame to frame.
FRAMES_COMPARED = 5
# When nothing verified, the nearest hit of a picture pasted in the query (a screenshot's photo)
# comes first if it scores at least this much and more than the whole query's nearest: the
# page's vector describes the page, the pasted picture's the picture. Chosen on the searches of
# augly-, augly3- and augly5-mild, augly-hard and copydetect-hard that verified nothing (a
# one-off over exact search): 0.6 put 11 more originals first and none in place of a right
# first hit; 0.5 one more, 0.8 four (docs/BENCHMARKS.md, "The nearest hit of a pasted
# picture").
PASTED_NEAREST_SCORE = 0.6


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


@dataclass(frozen=True)
class _Checked:
    """What checking one hit found: how many features agree with the query's under one
    geometry, and whether it is a copy of the query's picture (by them, or pixel for pixel)."""

    inliers: int
    verified: bool


# A hit on which 4-9 features agree: its position, the query's view it matched, the match.
_Weak = tuple[int, QueryView, Match]


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
    be read stays where it is. Hits' features are kept in the `cache` (when given); the hits
    after the first `verify_top`, down to `verify_kept_top` more, are checked too when kept.
    With `verify_weak`, when none of them verifies, the first WEAK_COMPARED checked hits on
    which too few features agree (WEAK_INLIERS up to MIN_INLIERS: a smooth picture, a small
    crop) are compared with the query pixel for pixel, in order, and the first that is one
    picture with it verifies.
    A search none of whose checked hits verifies then searches parts of its picture the same
    way, in turn: with `verify_pasted`, the pictures pasted inside it (a screenshot's photo);
    with `verify_centre`, its middle. A hit verified so comes first.
    With `verify_frames`, a search that verified nothing at all compares the query with its
    FRAMES_COMPARED nearest hits frame to frame (ris/search/whole_frames.py: a mild copy of a
    smooth picture, on which too few features agree), and the most alike of those that are one
    picture with it comes first, unverified. Before that, with `verify_region`, the first of the
    REGION_COMPARED first hits on which 4-9 features agree whose part under the query, as they
    align it, scores REGION_SCORE or more against the query's vector (and no less than the
    nearest whole hit) comes first, unverified (ris/search/region_vectors.py: a small crop
    under heavy edits, which the model still knows for its original's part). Failing that, with
    `pasted_nearest`, the nearest hit of a picture pasted in the query comes first, unverified,
    when it scores at least PASTED_NEAREST_SCORE and more than the whole query's nearest.
    """

    def __init__(
        self,
        pipeline: EmbeddingPipeline,
        index: VectorIndex,
        verify_top: int,
        max_pixels: int,
        embed_lock: contextlib.AbstractContextManager[Any] | None = None,
        remote: Remote | None = None,
        cache: FeatureCache | None = None,
        verify_kept_top: int = 0,
        verify_centre: bool = False,
        verify_pasted: bool = False,
        verify_weak: bool = False,
        verify_frames: bool = False,
        pasted_nearest: bool = False,
        verify_region: bool = False,
    ):
        self.pipeline = pipeline
        self.index = index
        self.verify_top = verify_top
        # Hits checked at most: the kept ones beyond `verify_top` only with verification on.
        self.checked_top = verify_top + (verify_kept_top if verify_top and cache is not None else 0)
        # When nothing the whole query found verifies, its centre is searched and checked too.
        self.verify_centre = verify_centre and verify_top > 0
        # Then the pictures pasted inside it (a screenshot's photo), before the centre.
        self.verify_pasted = verify_pasted and verify_top > 0
        self.verify_weak = verify_weak
        self.verify_frames = verify_frames and verify_top > 0
        self.pasted_nearest = pasted_nearest and self.verify_pasted
        self.verify_region = verify_region and verify_top > 0
        self.max_pixels = max_pixels
        self.embed_lock = embed_lock or contextlib.nullcontext()
        # Reads query images and indexed objects given by URL (verification reads the hits).
        self.remote = remote or Remote()
        self.pictures = Pictures(self.remote, max_pixels)
        self.features = KeptFeatures(self.pictures, cache)

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
        cache = (
            open_feature_cache(settings, MAX_SIDE, MAX_FEATURES) if settings.verify_top else None
        )
        return cls(
            pipeline,
            index,
            settings.verify_top,
            settings.max_pixels,
            embed_lock,
            remote,
            cache,
            settings.verify_kept_top,
            settings.verify_centre,
            settings.verify_pasted,
            settings.verify_weak,
            settings.verify_frames,
            settings.pasted_nearest,
            settings.verify_region,
        )

    @property
    def cache(self) -> FeatureCache | None:
        """Where hits' local features are kept; None when they are not."""
        return self.features.cache

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()

    def __enter__(self) -> ImageSearch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        query is then verified on its own. Hits below `min_score` are dropped unless verified (or
        put first unverified: one picture with the query frame to frame, or a pasted picture's
        far nearer hit).
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
                    yield self._outcomes(*pending, top_k, where, min_score)
                pending = (embedded, searched)
            if pending is not None:
                yield self._outcomes(*pending, top_k, where, min_score)

    def embed_pictures(self, pictures: list[bytes]) -> np.ndarray:
        """The vectors of pictures given as bytes (of those that decode, in order)."""
        with self.embed_lock:
            return self.pipeline(pictures).vectors

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
        where: RowFilter | None,
        min_score: float | None,
    ) -> list[SearchResponse | ImageDecodeError]:
        found = searched.result()
        # The batch's embedding and search time, shared evenly by its queries.
        shared = {
            "embed": embedded.seconds * 1000 / max(1, len(embedded.queries)),
            "search": found.seconds * 1000 / max(1, len(found.hits)),
        }
        decoded = iter(zip(found.hits, embedded.batch.vectors, strict=True))
        failures = embedded.batch.failures
        outcomes: list[SearchResponse | ImageDecodeError] = []
        for source, query in zip(embedded.sources, embedded.queries, strict=True):
            if query in failures:
                reason = failures[query]
                outcomes.append(
                    ImageDecodeError(f"{source}: {reason}" if isinstance(source, str) else reason)
                )
            else:
                hits, vector = next(decoded)
                outcomes.append(self._rank(query, vector, hits, top_k, where, min_score, shared))
        return outcomes

    def _rank(
        self,
        query: ImageSource,
        vector: np.ndarray,
        hits: list[SearchHit],
        top_k: int,
        where: RowFilter | None,
        min_score: float | None,
        shared: dict[str, float],
    ) -> SearchResponse:
        """Verify the nearest hits, put the verified copy (or else the hit put first unverified)
        first, drop what else scores too low."""
        started = time.perf_counter()
        hits, checked, first = self._verify(query, vector, hits, where)
        verified = {i for i, found in checked.items() if found.verified}
        order = sorted(range(len(hits)), key=lambda i: (i not in verified, i != first, i))
        if min_score is not None:
            order = [i for i in order if i in verified or i == first or hits[i].score >= min_score]
        results = [
            SearchResult(
                rank,
                hits[i].id,
                hits[i].path,
                hits[i].score,
                checked[i].inliers if i in checked else None,
                i in verified,
            )
            for rank, i in enumerate(order[:top_k], start=1)
        ]
        verify_ms = (time.perf_counter() - started) * 1000
        timings = {**shared, "verify": verify_ms, "total": sum(shared.values()) + verify_ms}
        return SearchResponse(results, {name: round(ms, 2) for name, ms in timings.items()})

    def _verify(
        self, query: ImageSource, vector: np.ndarray, hits: list[SearchHit], where: RowFilter | None
    ) -> tuple[list[SearchHit], dict[int, _Checked], int | None]:
        """The hits, and what checking found of those checked, by position: the whole query's
        hits, then, while none of them verified, those of its parts (a verified one joins the
        hits). Last, when none verified, the position of the hit to put first unverified: the
        most alike frame to frame, or else a pasted picture's nearest (which joins the hits)."""
        if not hits or self.verify_top == 0 or hits[0].score >= SAME_PICTURE_SCORE:
            return hits, {}, None
        try:
            readable = self.pictures.readable(query)
            views = query_views(readable, self.max_pixels)
        except ImageDecodeError:  # a query URL that could be read a moment ago, now cannot
            return hits, {}, None
        # A search for `checked_top` hits or more has them all already.
        complete = len(hits) >= self.checked_top
        hits, checked, weak = self._checked(views, vector, hits, complete, where)
        if any(found.verified for found in checked.values()):
            return hits, checked, None
        nearest: list[SearchHit] = []  # each pasted picture's nearest hit
        for region, pasted in self._regions(readable):
            hits, checked, verified, own = self._region_checked(region, hits, checked, where)
            if verified:
                return hits, checked, None
            if pasted and own:
                nearest.append(own[0])
        if self.verify_region and (confirmed := self._region_confirmed(vector, hits, weak)):
            return hits, checked, confirmed
        alike = self._most_alike(views[0].grey, hits) if self.verify_frames else None
        if alike is not None or not self.pasted_nearest:
            return hits, checked, alike
        hits, first = self._pasted_nearest(hits, nearest)
        return hits, checked, first

    def _pasted_nearest(
        self, hits: list[SearchHit], nearest: list[SearchHit]
    ) -> tuple[list[SearchHit], int | None]:
        """The hits, and the position of the best of the pasted pictures' nearest hits when it
        scores PASTED_NEAREST_SCORE or more and more than the first hit (it joins the hits at
        its place there, or after them); None when none does."""
        best = max(nearest, key=lambda hit: hit.score, default=None)
        if best is None or best.score < PASTED_NEAREST_SCORE or best.score <= hits[0].score:
            return hits, None
        return _joined(hits, best)

    def _region_confirmed(
        self, vector: np.ndarray, hits: list[SearchHit], weak: list[_Weak]
    ) -> int | None:
        """The position of the first of the REGION_COMPARED first `weak` hits whose part under
        the query, as the match aligns it, covers REGION_COVER of the query and scores
        REGION_SCORE or more against its `vector`, and no less than the nearest whole hit; None
        when none does. The regions are embedded as one batch."""
        regions: dict[bytes, int] = {}  # a region's picture -> its hit's position
        for position, view, found in weak[:REGION_COMPARED]:
            colour = self.pictures.colour(hits[position].path)
            if colour is None:
                continue
            region, cover = region_under(view.grey.shape, colour, found)
            if cover >= REGION_COVER:
                regions.setdefault(png_bytes(region), position)
        if not regions:
            return None
        with self.embed_lock:
            embedded: EmbeddedBatch[Any] = self.pipeline(list(regions))
        scores = {
            regions[picture]: float(region_vector @ vector)
            for picture, region_vector in zip(embedded.paths, embedded.vectors, strict=True)
        }
        return next(
            (
                position
                for position in sorted(scores)
                if scores[position] >= max(REGION_SCORE, hits[0].score)
            ),
            None,
        )

    def _most_alike(self, query: np.ndarray, hits: list[SearchHit]) -> int | None:
        """The position of the nearest hit most alike the query frame to frame among the
        FRAMES_COMPARED nearest that are one picture with it; None when none is."""
        alike: dict[int, float] = {}  # position -> structure
        for position, hit in enumerate(hits[:FRAMES_COMPARED]):
            grey = self.pictures.grey(hit.path)
            comparison = frames_compared(query, grey) if grey is not None else None
            if comparison is not None and comparison.same_picture:
                alike[position] = comparison.structure
        return max(alike, key=alike.__getitem__, default=None)

    def _regions(self, query: ImageSource) -> Iterator[tuple[bytes, bool]]:
        """Parts of the query searched again, in turn, while nothing verifies, and whether each
        is a pasted picture: the pictures pasted inside it, then its centre; each is cut only
        when asked for."""
        try:
            if self.verify_pasted:
                for picture in pasted_pictures(query, self.max_pixels, padded=True):
                    yield picture, True
            if self.verify_centre:
                yield query_centre(query, self.max_pixels), False
        except ImageDecodeError:  # a query URL that could be read a moment ago, now cannot
            return

    def _checked(
        self,
        views: Sequence[QueryView],
        vector: np.ndarray,
        hits: list[SearchHit],
        complete: bool,
        where: RowFilter | None,
    ) -> tuple[list[SearchHit], dict[int, _Checked], list[_Weak]]:
        """The hits, what checking found of those checked, by position, stopping at the first
        verified one, and those on which 4-9 features agree, in order. Checked: the first
        `verify_top`, then (asked of the index only now, as most searches stop before) those
        after them down to `checked_top` whose features are kept; then, with `verify_weak`,
        those on which too few features agree, pixel for pixel. `complete`: the hits hold every
        hit down to `checked_top` already. A hit's match is the best of any of the query's
        views."""
        checked: dict[int, _Checked] = {}
        weak: list[_Weak] = []

        def verified(position: int, features: LocalFeatures | None) -> bool:
            if features is None:
                return False
            matches = [(view, match(view.features, features)) for view in views]
            view, found = max(matches, key=lambda pair: 0 if pair[1] is None else pair[1].inliers)
            count = 0 if found is None else found.inliers
            checked[position] = _Checked(count, count >= MIN_INLIERS)
            if found is not None and WEAK_INLIERS <= count < MIN_INLIERS:
                weak.append((position, view, found))
            return checked[position].verified

        for position, hit in enumerate(hits[: self.verify_top]):
            features = self.features.kept(hit.id, hit.state)
            if features is None:
                features = self.features.extract(hit.id, hit.path, hit.state)
            if verified(position, features):
                return hits, checked, weak
        if self.checked_top > self.verify_top:
            if not complete:
                (deeper,) = self.index.search(vector[None, :], self.checked_top, where)
                seen = {hit.id for hit in hits}
                hits = hits + [hit for hit in deeper if hit.id not in seen]
            for position in range(self.verify_top, min(len(hits), self.checked_top)):
                if verified(position, self.features.kept(hits[position].id, hits[position].state)):
                    return hits, checked, weak
        for position, view, found in weak[:WEAK_COMPARED] if self.verify_weak else []:
            if self._one_picture(view, hits[position], found):
                checked[position] = _Checked(found.inliers, True)
                break
        return hits, checked, weak

    def _one_picture(self, view: QueryView, hit: SearchHit, found: Match) -> bool:
        """Whether the hit, aligned onto the query by the few features that agree (`found`), is
        one picture with it pixel for pixel, the overlap covering most of the smaller: the rule
        duplicate groups confirm smooth pairs by (ris/search/same_picture.py)."""
        grey = self.pictures.grey(hit.path)
        return grey is not None and compared(view.grey, grey, found).confirms_weak_match

    def _region_checked(
        self,
        region: bytes,
        hits: list[SearchHit],
        checked: dict[int, _Checked],
        where: RowFilter | None,
    ) -> tuple[list[SearchHit], dict[int, _Checked], bool, list[SearchHit]]:
        """A part of the query embedded, searched and checked as the whole query was; its first
        verified hit joins the whole query's hits (at its place there, or after them). The
        third item says whether one did, the last is the part's own hits (none when it could
        not be searched)."""
        try:
            views = query_views(region, self.max_pixels)
        except ImageDecodeError:
            return hits, checked, False, []
        with self.embed_lock:
            embedded: EmbeddedBatch[Any] = self.pipeline([region])
        if not embedded.paths:
            return hits, checked, False, []
        vector = embedded.vectors[0]
        # Asked for all it may check at once: few parts verify early.
        (region_hits,) = self.index.search(vector[None, :], self.checked_top, where)
        region_hits, region_checked, _ = self._checked(views, vector, region_hits, True, where)
        verified = next((p for p, found in region_checked.items() if found.verified), None)
        if verified is None:
            return hits, checked, False, region_hits
        hits, position = _joined(hits, region_hits[verified])
        return hits, {**checked, position: region_checked[verified]}, True, region_hits


def _joined(hits: list[SearchHit], hit: SearchHit) -> tuple[list[SearchHit], int]:
    """The hits with `hit` among them (at its place there, or after them), and its position."""
    for position, known in enumerate(hits):
        if known.id == hit.id:
            return hits, position
    return [*hits, hit], len(hits)
