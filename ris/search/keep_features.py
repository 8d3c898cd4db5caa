"""Keeping every indexed picture's local features ahead of searches (`query features`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from ris.errors import FeatureCacheError
from ris.files.remote import Remote
from ris.index.base import VectorIndex
from ris.search.feature_cache import KeptFeatures, open_feature_cache
from ris.search.verify import MAX_FEATURES, MAX_SIDE, Pictures
from ris.settings import Settings

# (pictures done, pictures in all)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class KeepReport:
    """What one `query features` run found and did."""

    directory: str  # where they are kept
    rows: int
    already_kept: int
    extracted: int
    unreadable: int
    seconds: float
    cache_bytes: int  # what every kept feature takes on disk now, with the database's pages

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def keep_search_features(
    settings: Settings,
    index: VectorIndex,
    under: str = "",
    on_progress: Progress = lambda done, total: None,
) -> KeepReport:
    """Keep the features searches match hits by (RIS_FEATURE_CACHE_DIR) for every row under
    `under`; raises FeatureCacheError when no features can be kept."""
    if settings.feature_cache_gb <= 0:
        raise FeatureCacheError("RIS_FEATURE_CACHE_GB is 0: no local features are kept")
    cache = open_feature_cache(settings, MAX_SIDE, MAX_FEATURES)
    if cache is None:
        raise FeatureCacheError(
            f"cannot open the feature cache in {settings.resolved_feature_cache_dir()} (remove "
            "it, or set RIS_FEATURE_CACHE_DIR elsewhere)"
        )
    with cache:
        pictures = Pictures(Remote(settings.fetch_options), settings.max_pixels)
        return keep_features(index, KeptFeatures(pictures, cache), under, on_progress=on_progress)


def keep_features(
    index: VectorIndex,
    kept: KeptFeatures,
    under: str = "",
    threads: int = 2,
    on_progress: Progress = lambda done, total: None,
) -> KeepReport:
    """Extract and keep the features of every row under `under` (all when empty) that the
    cache does not hold as the row is indexed; `threads` pictures at a time."""
    cache = kept.cache
    if cache is None:
        raise FeatureCacheError("no feature cache to keep local features in")
    started = time.perf_counter()
    total = index.count(under)
    rows = already = extracted = unreadable = 0
    on_progress(0, total)
    with ThreadPoolExecutor(threads, thread_name_prefix="features") as pool:
        for page in index.iter_rows(under, vectors=False):
            missing = [
                (int(row_id), path, state)
                for row_id, path, state in zip(page.ids, page.paths, page.states, strict=True)
                if not cache.has(int(row_id), state)
            ]
            found = pool.map(lambda row: kept.extract(*row), missing)
            unreadable += sum(features is None for features in found)
            rows += len(page.ids)
            extracted += len(missing)
            already += len(page.ids) - len(missing)
            on_progress(rows, max(total, rows))
    return KeepReport(
        directory=str(cache.directory),
        rows=rows,
        already_kept=already,
        extracted=extracted,
        unreadable=unreadable,
        seconds=round(time.perf_counter() - started, 2),
        cache_bytes=cache.bytes,
    )
