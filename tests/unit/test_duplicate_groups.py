"""Grouping pairs into duplicate groups: union-find, the order pairs are checked in, each
picture's features extracted once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ris.duplicates.groups import FEATURE_COUNT, FEATURE_SIDE
from ris.duplicates.stores import FeatureStore
from ris.duplicates.union_find import UnionFind
from ris.duplicates.verdicts import _in_checking_order, accepted_pairs
from ris.files.remote import Remote
from ris.search.verify import Pictures
from tests.helpers import CountingPictures


def test_union_find_joins_chains_into_one_set_and_keeps_others_apart() -> None:
    sets = UnionFind()
    for first, second in [(1, 2), (3, 4), (2, 3), (10, 11)]:
        assert sets.union(first, second)
    assert not sets.union(1, 4)  # already one set through 2 and 3
    sets.find(99)  # a lone item is no group
    assert sorted(sorted(items) for items in sets.sets()) == [[1, 2, 3, 4], [10, 11]]


def test_pairs_are_checked_a_cluster_at_a_time_most_similar_first() -> None:
    pairs = {(1, 2): 0.6, (5, 6): 0.9, (2, 3): 0.8, (6, 7): 0.7}
    order = _in_checking_order(pairs)
    clusters = [frozenset(pair) & {1, 2, 3} for pair in order]
    # Pairs of one cluster are next to each other, and within it by falling score.
    first_cluster = [pair for pair in order if set(pair) <= {1, 2, 3}]
    assert first_cluster == [(2, 3), (1, 2)]
    assert [bool(c) for c in clusters] in ([True, True, False, False], [False, False, True, True])


def test_without_verification_every_pair_joins_its_images() -> None:
    pairs = {(1, 2): 0.95, (2, 3): 0.91, (7, 8): 0.99}
    verdicts = accepted_pairs(pairs, {}, None)
    assert (verdicts.checked, verdicts.accepted, verdicts.compared) == (0, 3, 0)
    assert sorted(sorted(items) for items in verdicts.joined.sets()) == [[1, 2, 3], [7, 8]]


def test_each_pictures_features_are_extracted_once_and_read_back_unchanged(
    photos: list[Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not a jpeg")
    paths = dict(enumerate([*map(str, photos[:4]), str(broken)]))
    pictures = CountingPictures()
    with FeatureStore(pictures) as store, ThreadPoolExecutor(4) as pool:
        asked = [row_id for row_id in paths for _ in range(6)]
        first = list(pool.map(lambda row_id: store.get(row_id, paths[row_id]), asked))
        again = [store.get(row_id, paths[row_id]) for row_id in paths]
    assert sorted(pictures.extracted) == sorted(paths.values())  # once each, however many asks
    assert first[-1] is None and again[-1] is None  # unreadable, and remembered so
    for row_id in range(4):
        fresh = Pictures(Remote(), 10**8, FEATURE_SIDE, FEATURE_COUNT).features(paths[row_id])
        stored = again[row_id]
        assert fresh is not None and stored is not None and len(stored.points) > 100
        assert np.array_equal(stored.points, fresh.points)
        assert np.array_equal(stored.descriptors, fresh.descriptors)
