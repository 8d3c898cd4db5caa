"""What checking pairs reads of each picture, once however many pairs it is in: its local features
(in a scratch file, and the cache kept between runs), its grey pixels, the pictures pasted in it."""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from threading import Lock

import numpy as np

from ris.files.changes import FileState
from ris.search.feature_cache import (
    FEATURE_BYTES,
    FeatureCache,
    KeptFeatures,
    features_bytes,
    features_from_bytes,
)
from ris.search.pasted_pictures import Box
from ris.search.verify import LocalFeatures, Pictures


class FeatureStore:
    """Local features by row id, each picture's extracted once however many pairs it is in:
    kept in an unnamed scratch file, so memory holds what the page cache can spare rather than
    every picture's features (about 68 KB each as bytes). Pictures whose features the `cache`
    kept from an earlier run (by `states`, the file state the index holds of each row) are not
    read at all, and those extracted are kept there. Thread-safe; a picture asked for while
    another thread extracts it waits for that extraction."""

    def __init__(
        self,
        pictures: Pictures,
        cache: FeatureCache | None = None,
        states: Mapping[int, FileState] | None = None,
    ):
        self.pictures = pictures
        self.states = states or {}
        self._kept = KeptFeatures(pictures, cache)
        self._file = tempfile.TemporaryFile(prefix="ris-features-")
        self._end = 0
        # row id -> (offset, feature count) in the file, or None when it cannot be read.
        self._stored: dict[int, tuple[int, int] | None] = {}
        self._pending: dict[int, Future[LocalFeatures | None]] = {}
        self._lock = Lock()
        self.extracted = 0  # pictures read and their features extracted (or found unreadable)
        self.cached = 0  # pictures whose features came from the cache

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def get(self, row_id: int, path: str) -> LocalFeatures | None:
        with self._lock:
            stored = row_id in self._stored
            where = self._stored.get(row_id)
            waiting = self._pending.get(row_id)
            if not stored and waiting is None:
                self._pending[row_id] = mine = Future[LocalFeatures | None]()
        # Read outside the lock: the other threads' reads and extractions go on meanwhile.
        if stored:
            return self._read(where)
        if waiting is not None:
            return waiting.result()
        try:
            features = self._find(row_id, path)
            where = None if features is None else self._write(features)
        except BaseException as error:
            with self._lock:
                del self._pending[row_id]
            mine.set_exception(error)
            raise
        with self._lock:
            self._stored[row_id] = where
            del self._pending[row_id]
        mine.set_result(features)
        return features

    def _find(self, row_id: int, path: str) -> LocalFeatures | None:
        """The picture's features from the cache, or else extracted (and then cached)."""
        state = self.states.get(row_id)
        features = self._kept.kept(row_id, state)
        if features is not None:
            with self._lock:
                self.cached += 1
            return features
        features = self._kept.extract(row_id, path, state)
        with self._lock:
            self.extracted += 1
        return features

    def _write(self, features: LocalFeatures) -> tuple[int, int]:
        data = features_bytes(features)
        with self._lock:
            offset, self._end = self._end, self._end + len(data)
        os.pwrite(self._file.fileno(), data, offset)
        return offset, len(features.points)

    def _read(self, where: tuple[int, int] | None) -> LocalFeatures | None:
        if where is None:
            return None
        offset, count = where
        return features_from_bytes(os.pread(self._file.fileno(), count * FEATURE_BYTES, offset))


class RecentPictures:
    """Pictures as `read` gives them by path (grey or colour, at the features' side), the latest
    few kept: pairs checked a cluster at a time share their pictures. Two threads may read one
    picture at once."""

    def __init__(
        self,
        read: Callable[[str], np.ndarray | None],
        paths: dict[int, str],
        size: int = 256,
    ):
        self.get: Callable[[int], np.ndarray | None] = functools.lru_cache(maxsize=size)(
            lambda row_id: read(paths[row_id])
        )


class PastedCache:
    """The boxes of the pictures pasted in each picture (Pictures.pasted_boxes), found once a
    picture; None when it cannot be read. Two threads may look at one picture at once."""

    def __init__(self, pictures: Pictures, paths: dict[int, str]):
        self.paths = paths
        self.get: Callable[[int], list[Box] | None] = functools.cache(
            lambda row_id: pictures.pasted_boxes(paths[row_id])
        )
