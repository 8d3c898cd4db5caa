"""Which features recur, and which pairs they hold, on matches made by hand."""

from __future__ import annotations

import numpy as np

from ris.duplicates.recurring import (
    RECURRING_PARTNERS,
    aligned_in_place,
    distinctive_inliers,
    frame_features,
    needs_same_picture,
    recurring_features,
)
from ris.search.verify import MIN_INLIERS, LocalFeatures, Match

# A copy at half size, shifted: not aligned in place.
HALF_SIZE = np.array([[0.5, 0.0, 40.0], [0.0, 0.5, 10.0]])


def agreeing(first: list[int], second: list[int], transform: np.ndarray = HALF_SIZE) -> Match:
    return Match(np.array(first), np.array(second), transform, False)


def similarity(scale: float, degrees: float, shift: float) -> np.ndarray:
    turn = np.radians(degrees)
    a, b = scale * np.cos(turn), scale * np.sin(turn)
    return np.array([[a, -b, shift], [b, a, 0.0]])


def test_a_feature_recurs_past_the_partner_count_on_either_side_of_a_pair() -> None:
    # Picture 0's feature 7 agrees with one feature of each of pictures 1..N.
    at_the_count = {(0, n): agreeing([7], [3]) for n in range(1, RECURRING_PARTNERS + 1)}
    assert recurring_features(at_the_count) == {}
    one_more = {**at_the_count, (RECURRING_PARTNERS + 1, 0): agreeing([3], [7])}
    assert recurring_features(one_more) == {0: {7}}


def test_a_pair_held_mostly_by_recurring_features_needs_the_same_picture() -> None:
    count = 4 * MIN_INLIERS
    pair = (1, 2)
    found = agreeing(list(range(count)), list(range(count)))
    assert distinctive_inliers(pair, found, {}) == count
    assert not needs_same_picture(pair, found, {})
    # Three quarters of the first picture's agreeing features recur: a quarter is left.
    recurring = {1: set(range(count * 3 // 4))}
    assert distinctive_inliers(pair, found, recurring) == count // 4
    assert not needs_same_picture(pair, found, recurring)
    recurring = {1: set(range(count * 3 // 4 + 1))}
    assert needs_same_picture(pair, found, recurring)
    # However few agree, fewer than MIN_INLIERS distinctive ones hold nothing.
    small = agreeing(list(range(MIN_INLIERS)), list(range(MIN_INLIERS)))
    assert needs_same_picture(pair, small, {2: {0}})


def test_a_pair_aligned_in_place_needs_the_same_picture_however_distinctive() -> None:
    count = 4 * MIN_INLIERS
    pair = (1, 2)
    features = list(range(count))
    for transform, aligned in (
        (np.eye(2, 3), True),
        (similarity(1.04, 1.9, 5.0), True),
        (similarity(0.96, -1.9, 5.0), True),
        (similarity(1.06, 0.0, 0.0), False),
        (similarity(1.0, 2.1, 0.0), False),
        (similarity(1.0, 0.0, 7.0), False),
    ):
        found = agreeing(features, features, transform)
        assert distinctive_inliers(pair, found, {}) == count
        assert aligned_in_place(found) == aligned, transform
        assert needs_same_picture(pair, found, {}) == aligned
    mirrored = Match(np.array(features), np.array(features), np.eye(2, 3), True)
    assert not aligned_in_place(mirrored)


def test_the_frame_is_every_feature_outside_the_pasted_pictures() -> None:
    points = np.array([[5, 5], [10, 10], [19.9, 19.9], [20, 20], [35, 5], [45, 5]], np.float32)
    features = LocalFeatures(points, np.zeros((len(points), 128), np.float32))
    # Left and top edges inside, right and bottom outside, as pixels are counted.
    assert frame_features(features, [(10, 10, 20, 20)]) == {0, 3, 4, 5}
    assert frame_features(features, [(10, 10, 20, 20), (30, 0, 40, 10)]) == {0, 3, 5}
    assert frame_features(features, []) == set()  # nothing pasted: no frame
