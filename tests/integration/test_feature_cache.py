"""Local features kept between runs of `query duplicates`: found by the next run as they were
extracted, read again when the file changed, the oldest dropped beyond the size limit, and a
cache that cannot be used left out with a warning."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from ris.duplicates.groups import FEATURE_COUNT, FEATURE_FEW, FEATURE_SIDE
from ris.duplicates.stores import FeatureStore
from ris.files.changes import FileState
from ris.files.remote import Remote
from ris.search.feature_cache import FeatureCache, open_feature_cache
from ris.search.verify import LocalFeatures, Pictures
from ris.settings import Settings
from tests.helpers import CountingPictures


def _cache(directory: Path, max_bytes: int = 10**9, side: int = FEATURE_SIDE) -> FeatureCache:
    return FeatureCache(directory, max_bytes, side, FEATURE_COUNT)


def _read_all(store: FeatureStore, paths: dict[int, str]) -> dict[int, LocalFeatures | None]:
    """Every picture asked for three times over, from four threads."""
    asked = [row_id for row_id in paths for _ in range(3)]
    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(lambda row_id: store.get(row_id, paths[row_id]), asked))
    return dict(zip(asked, found, strict=True))


def test_features_kept_by_one_run_are_found_by_the_next_and_not_read_again(
    photos: list[Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not a jpeg")
    paths = dict(enumerate([*map(str, photos[:4]), str(broken)]))
    states = {row_id: FileState(1000 + row_id, 7, "") for row_id in paths}
    first_run = CountingPictures()
    cache = _cache(tmp_path / "features")
    with FeatureStore(first_run, cache, states) as store:
        extracted = _read_all(store, paths)
        assert (store.extracted, store.cached) == (5, 0)
    cache.close()
    assert sorted(first_run.extracted) == sorted(paths.values())

    # The next run, another process in practice: the same folder opened anew.
    next_run = CountingPictures()
    cache = _cache(tmp_path / "features")
    assert len(cache) == 4 and cache.bytes > 4 * 500 * 128  # the unreadable one is not kept
    with FeatureStore(next_run, cache, states) as store:
        found = _read_all(store, paths)
        assert (store.extracted, store.cached) == (1, 4)
    assert next_run.extracted == [str(broken)]  # it may have been mended since: tried again
    for row_id in range(4):
        before, after = extracted[row_id], found[row_id]
        assert before is not None and after is not None and len(after.points) > 100
        assert np.array_equal(after.points, before.points)
        assert np.array_equal(after.descriptors, before.descriptors)
    assert found[4] is None


def test_a_file_changed_since_or_other_settings_are_extracted_again(
    photos: list[Path], tmp_path: Path
) -> None:
    path = str(photos[0])
    indexed = FileState(100, 5, "")
    cache = _cache(tmp_path / "features")
    features = Pictures(Remote(), 10**8, FEATURE_SIDE, FEATURE_COUNT).features(path)
    assert features is not None
    cache.put(1, indexed, features)
    assert cache.get(1, indexed) is not None
    assert cache.get(2, indexed) is None  # another file
    for changed in (FileState(101, 5, ""), FileState(100, 6, ""), FileState(100, 5, "ab")):
        assert cache.get(1, changed) is None
    cache.close()
    assert _cache(tmp_path / "features", side=FEATURE_SIDE + 64).get(1, indexed) is None
    few = FeatureCache(tmp_path / "features", 10**9, FEATURE_SIDE, FEATURE_COUNT, FEATURE_FEW)
    assert few.get(1, indexed) is None  # pictures with few features detected again
    few.close()
    # A row without a known file state is extracted, and not kept.
    pictures = CountingPictures()
    cache = _cache(tmp_path / "features")
    with FeatureStore(pictures, cache, {}) as store:
        assert store.get(1, path) is not None
    assert pictures.extracted == [path] and len(cache) == 1


def test_the_oldest_features_go_first_beyond_the_size_limit(
    photos: list[Path], tmp_path: Path
) -> None:
    features = Pictures(Remote(), 10**8, FEATURE_SIDE, FEATURE_COUNT).features(str(photos[0]))
    assert features is not None
    cache = _cache(tmp_path / "features", max_bytes=2 * 10**6)
    for row_id in range(100):  # about 6.8 MB of features
        cache.put(row_id, FileState(1, 1, ""), features)
    assert cache.bytes <= 2 * 10**6 + 20 * 70_000  # culled a few at a time as it grows
    kept = [row_id for row_id in range(100) if cache.get(row_id, FileState(1, 1, ""))]
    assert 10 <= len(kept) < 40
    assert kept == list(range(100 - len(kept), 100))  # the newest


def test_a_cache_turned_off_or_that_cannot_be_opened_is_left_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert open_feature_cache(Settings(feature_cache_gb=0), FEATURE_SIDE, FEATURE_COUNT) is None
    not_a_folder = tmp_path / "features"
    not_a_folder.write_text("a file")
    settings = Settings(feature_cache_dir=not_a_folder)
    with caplog.at_level(logging.WARNING):
        assert open_feature_cache(settings, FEATURE_SIDE, FEATURE_COUNT) is None
    assert f"features are not kept between runs: cannot open {not_a_folder}" in caplog.text
    settings = Settings(feature_cache_dir=tmp_path / "kept", feature_cache_gb=0.5)
    cache = open_feature_cache(settings, FEATURE_SIDE, FEATURE_COUNT)
    assert cache is not None and cache.directory == tmp_path / "kept"
    features = LocalFeatures(np.zeros((300, 2), np.float32), np.ones((300, 128), np.float32))
    for row_id in range(20):
        cache.put(row_id, FileState(1, 1, ""), features)
    cache.close()
    # A database damaged (by a power cut while it was written, say): the run goes on without.
    with open(tmp_path / "kept" / "cache.db", "r+b") as database:
        database.seek(4096)
        database.write(np.random.default_rng(0).bytes(300_000))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert open_feature_cache(settings, FEATURE_SIDE, FEATURE_COUNT) is None
    assert "database disk image is malformed" in caplog.text
