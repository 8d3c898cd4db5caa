"""`Client`: one collection's search, jobs and enqueueing behind typed methods."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from pydantic import ValidationError

from ris.embedding.imaging import ImageSource
from ris.errors import ImageDecodeError, SettingsError
from ris.files.scan import iter_image_paths
from ris.index.milvus import MilvusIndex, open_index
from ris.jobs.connection import connect_redis
from ris.jobs.tracker import JobStatus, JobTracker
from ris.search.filters import path_prefix, row_filter
from ris.search.image_search import ImageSearch, SearchResult
from ris.settings import Settings, load_settings

if TYPE_CHECKING:
    from ris.duplicates.candidates import Progress
    from ris.duplicates.groups import DuplicateReport

QueryImage = str | os.PathLike[str] | bytes | Image.Image | np.ndarray
Date = datetime | str | None


def _source(image: QueryImage) -> ImageSource:
    """A path or encoded bytes, as the pipeline reads them; pixels are encoded losslessly."""
    if isinstance(image, str | bytes):
        return image
    if isinstance(image, os.PathLike):
        return os.fspath(image)
    picture = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


class Client:
    """Search one collection by image and manage the jobs that fill it.

    Settings come from `settings`, else from the RIS_* variables; `redis_url`, `milvus_uri`,
    `collection` and `model` override them. Heavy parts (the model, the Milvus and Redis
    connections) are made on first use and closed by `close()` or the `with` block.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        redis_url: str | None = None,
        milvus_uri: str | None = None,
        collection: str | None = None,
        model: str | None = None,
    ):
        overrides = {
            name: value
            for name, value in (
                ("redis_url", redis_url),
                ("milvus_uri", milvus_uri),
                ("collection", collection),
                ("model", model),
            )
            if value is not None
        }
        if settings is None:
            settings = load_settings()
            if overrides:
                try:
                    # Built again so that a model without a collection gets its own collection.
                    settings = Settings(**{**settings.model_dump(), "collection": "", **overrides})
                except ValidationError as error:
                    raise SettingsError(f"invalid setting: {error.errors()[0]['msg']}") from None
        elif overrides:
            settings = settings.model_copy(update=overrides)
        self.settings = settings
        self._index: MilvusIndex | None = None
        self._search: ImageSearch | None = None
        self._tracker: JobTracker | None = None

    @property
    def index(self) -> MilvusIndex:
        if self._index is None:
            self._index = open_index(self.settings)
        return self._index

    @property
    def tracker(self) -> JobTracker:
        if self._tracker is None:
            self._tracker = JobTracker(connect_redis(self.settings.redis_url))
        return self._tracker

    def _image_search(self) -> ImageSearch:
        if self._search is None:
            self.index.require_collection()
            self._search = ImageSearch.from_settings(self.settings, self.index)
        return self._search

    def search(
        self,
        image: QueryImage,
        top_k: int = 10,
        *,
        under: Sequence[str] = (),
        modified_since: Date = None,
        modified_before: Date = None,
        min_score: float | None = None,
    ) -> list[SearchResult]:
        """The `top_k` indexed images most similar to `image` (a path, encoded bytes, a PIL
        image or an RGB array), among those under the `under` folders and modified in the
        range; hits below `min_score` are dropped unless verified as copies (or put first
        as one picture with the query frame to frame).

        Raises ImageDecodeError when the image cannot be read, CollectionMissingError when
        nothing was indexed yet.
        """
        (outcome,) = self.search_many(
            [image],
            top_k,
            under=under,
            modified_since=modified_since,
            modified_before=modified_before,
            min_score=min_score,
        )
        if isinstance(outcome, ImageDecodeError):
            raise outcome
        return outcome

    def search_many(
        self,
        images: Sequence[QueryImage],
        top_k: int = 10,
        *,
        under: Sequence[str] = (),
        modified_since: Date = None,
        modified_before: Date = None,
        min_score: float | None = None,
    ) -> list[list[SearchResult] | ImageDecodeError]:
        """`search` for many images, embedded and searched in batches: per image, its results
        or the reason it could not be read."""
        where = row_filter(under, modified_since, modified_before)
        search = self._image_search()
        outcomes: list[list[SearchResult] | ImageDecodeError] = []
        sources = [_source(image) for image in images]
        for start in range(0, len(sources), 32):
            for outcome in search.search_many(sources[start : start + 32], top_k, where, min_score):
                outcomes.append(
                    outcome if isinstance(outcome, ImageDecodeError) else outcome.results
                )
        return outcomes

    def duplicates(
        self,
        *,
        under: str | os.PathLike[str] | None = None,
        min_score: float | None = None,
        verify: bool = True,
        shared_features: bool | None = None,
        on_progress: Progress | None = None,
    ) -> DuplicateReport:
        """Every group of near-duplicate images in the collection (or `under` one folder or
        prefix), as `query duplicates` finds them: `.groups`, each image to keep first, and
        what it took. A first run over thousands of images takes minutes (`on_progress` hears
        each stage's progress); local features are kept for the next run as the CLI keeps
        them."""
        # faiss and the duplicate rules: loaded only by those who look for duplicates.
        from ris.duplicates.groups import find_duplicates, open_duplicates_cache

        search = self._image_search()
        cache = open_duplicates_cache(self.settings) if verify else None
        try:
            return find_duplicates(
                self.index,
                search.remote,
                self.settings.max_pixels,
                min_score,
                verify,
                path_prefix(os.fspath(under)) if under is not None else "",
                on_progress=on_progress or (lambda stage, done, total: None),
                cache=cache,
                shared_features=shared_features,
                embed=search.embed_pictures,
            )
        finally:
            if cache is not None:
                cache.close()

    def enqueue(self, *roots: str | os.PathLike[str], force: bool = False) -> str:
        """Send every new or changed image under `roots` (folders or files) to the workers as
        one job, like `producer enqueue`; returns the job id at once (see `wait`)."""
        # The producer's Celery client: loaded only by those who enqueue.
        from producer.client import Producer

        absolute = [os.path.abspath(root) for root in roots]
        paths: Iterable[str] = (p for root in absolute for p in iter_image_paths(root))
        producer = Producer(self.settings)
        try:
            report = producer.enqueuer(skip_unchanged=not force).run(
                paths,
                os.pathsep.join(absolute),
                self.settings.collection,
                model=self.settings.model,
            )
        finally:
            producer.close_index()
        return report.job

    def status(self, job: str) -> JobStatus:
        """A snapshot of the job's counters; JobNotFoundError for an unknown id."""
        return self.tracker.require_status(job)

    def failures(self, job: str) -> dict[str, str]:
        """Each image of the job that failed, with its reason."""
        return self.tracker.failures(job)

    def wait(self, job: str, timeout: float | None = None, poll: float = 0.5) -> JobStatus:
        """Block until the job is done (its images searchable) or `timeout` seconds pass."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (status := self.status(job)).done:
            if deadline is not None and time.monotonic() > deadline:
                return status
            time.sleep(poll)
        return status

    def close(self) -> None:
        if self._search is not None:
            self._search.close()
            self._search = None
        if self._index is not None:
            self._index.close()
            self._index = None

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Client(collection={self.settings.collection!r}, milvus={self.settings.milvus_uri!r})"
        )
