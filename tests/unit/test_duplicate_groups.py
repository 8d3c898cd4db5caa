"""Grouping pairs into duplicate groups: union-find, the order pairs are checked in."""

from __future__ import annotations

from ris.search.duplicates import UnionFind, _in_checking_order, accepted_pairs


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
    joined, checked, accepted = accepted_pairs(pairs, {}, None)
    assert (checked, accepted) == (0, 3)
    assert sorted(sorted(items) for items in joined.sets()) == [[1, 2, 3], [7, 8]]
