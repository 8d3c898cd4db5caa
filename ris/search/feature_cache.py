"""Local features kept between runs of `query duplicates` and searches, by each picture as it
was indexed."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import cv2
import diskcache
import numpy as np

from ris.files.changes import FileState
from ris.search.verify import LOW_CONTRAST, LocalFeatures, Pictures
from ris.settings import Settings

log = logging.getLogger(__name__)

# SQLite syncs the cache to disk at its write-ahead log's checkpoints: every 10,000 pages (40 MB,
# about 600 pictures) rather than SQLite's 1,000, a 66 KB write took 270-280 us against 310-400
# (a one-off of 3,000 writes, twice).
WAL_PAGES = 10_000
# Features are kept inside the database, not as a file each (diskcache's default above 32 KB).
IN_DATABASE_BYTES = 2**20
# A point is two float32 coordinates and a descriptor 128 bytes.
FEATURE_BYTES = 2 * 4 + 128


def features_bytes(features: LocalFeatures) -> bytes:
    """The features as bytes: SIFT descriptors are whole numbers 0-255, a byte each."""
    return (
        features.points.astype(np.float32).tobytes()
        + features.descriptors.astype(np.uint8).tobytes()
    )


def features_from_bytes(data: bytes) -> LocalFeatures:
    """The features `features_bytes` gave these bytes for."""
    count = len(data) // FEATURE_BYTES
    points = np.frombuffer(data, np.float32, count * 2).reshape(count, 2)
    descriptors = np.frombuffer(data, np.uint8, offset=count * 2 * 4).reshape(count, 128)
    return LocalFeatures(points, descriptors.astype(np.float32))


class FeatureCache:
    """A picture's features by its row and the file state the index holds for it, so a file
    changed and indexed again is extracted again. Pictures are found by the features' settings
    and OpenCV's version too. Oldest first out beyond `max_bytes`; safe across threads and
    processes (a SQLite database, through diskcache)."""

    def __init__(self, directory: Path, max_bytes: int, side: int, count: int, few: int = 0):
        self.directory = directory
        # Pictures.features' settings: side, count and `few_features`.
        again = f"-under{few}at{LOW_CONTRAST}" if few else ""
        self._settings = f"sift-{side}-{count}{again}-cv{cv2.__version__}"
        self._cache = diskcache.Cache(
            str(directory),
            size_limit=max_bytes,
            eviction_policy="least-recently-stored",
            disk_min_file_size=IN_DATABASE_BYTES,
            sqlite_wal_autocheckpoint=WAL_PAGES,
        )
        self._failed = False

    def close(self) -> None:
        self._cache.close()

    def __enter__(self) -> FeatureCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _key(self, row_id: int, state: FileState) -> str:
        return f"{row_id}:{state.size}:{state.mtime_ns}:{state.content_hash}:{self._settings}"

    def get(self, row_id: int, state: FileState) -> LocalFeatures | None:
        """The features kept for this row as indexed; None when there are none, or the cache
        cannot be read (`put`)."""
        if self._failed:
            return None
        try:
            data = self._cache.get(self._key(row_id, state))
        except (OSError, sqlite3.Error) as error:
            self._fail(error)
            return None
        return features_from_bytes(data) if isinstance(data, bytes) else None

    def has(self, row_id: int, state: FileState) -> bool:
        """Whether features are kept for this row as indexed (without reading them)."""
        if self._failed:
            return False
        try:
            return self._key(row_id, state) in self._cache
        except (OSError, sqlite3.Error) as error:
            self._fail(error)
            return False

    def put(self, row_id: int, state: FileState, features: LocalFeatures) -> None:
        """Keep the features. A cache that cannot be read or written (a full disk, a database
        damaged by a power cut) is left alone for the rest of the run with one warning, and the
        run goes on extracting."""
        if self._failed:
            return
        try:
            self._cache.set(self._key(row_id, state), features_bytes(features))
        except (OSError, sqlite3.Error) as error:
            self._fail(error)

    def _fail(self, error: Exception) -> None:
        if not self._failed:
            self._failed = True
            log.warning("features are no longer kept in %s: %s", self.directory, error)

    def __len__(self) -> int:
        return len(self._cache)

    @property
    def bytes(self) -> int:
        """What the kept features take on disk, with the database's own pages."""
        return int(self._cache.volume())


class KeptFeatures:
    """Indexed pictures' local features: kept ones from the `cache`, others read and extracted
    (and then kept). A row without a known file state is extracted and not kept."""

    def __init__(self, pictures: Pictures, cache: FeatureCache | None):
        self.pictures = pictures
        self.cache = cache

    def kept(self, row_id: int, state: FileState | None) -> LocalFeatures | None:
        """The features kept for the row as indexed; None when there are none."""
        if self.cache is None or state is None:
            return None
        return self.cache.get(row_id, state)

    def extract(self, row_id: int, path: str, state: FileState | None) -> LocalFeatures | None:
        """The picture's features read afresh, then kept; None when it cannot be read."""
        features = self.pictures.features(path)
        if features is not None and self.cache is not None and state is not None:
            self.cache.put(row_id, state, features)
        return features


def open_feature_cache(
    settings: Settings, side: int, count: int, few: int = 0
) -> FeatureCache | None:
    """The cache of RIS_FEATURE_CACHE_GB in RIS_FEATURE_CACHE_DIR, for features found at `side`,
    `count` and `few` (Pictures' settings); None when it is turned off (0) or cannot be opened
    (a warning says why: features are then extracted on every run)."""
    if settings.feature_cache_gb <= 0:
        return None
    directory = settings.resolved_feature_cache_dir()
    try:
        return FeatureCache(directory, int(settings.feature_cache_gb * 1e9), side, count, few)
    except (OSError, sqlite3.Error) as error:
        log.warning(
            "features are not kept between runs: cannot open %s: %s (remove it, or set "
            "RIS_FEATURE_CACHE_DIR elsewhere, to keep them again)",
            directory,
            error,
        )
        return None
