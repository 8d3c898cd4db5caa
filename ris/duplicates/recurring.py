"""Features that recur across many pictures (a screenshot template, a frame, a logo) prove
nothing about a pair: a pair held together only by them, or aligned in place as two
screenshots of one template are, must be one picture, pixel for pixel once aligned
(ris/search/same_picture.py), or it is no copy. Burstiness, as instance retrieval calls it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

import numpy as np

from ris.search.pasted_pictures import Box
from ris.search.verify import MIN_INLIERS, LocalFeatures, Match

Pair = tuple[int, int]

# A picture's feature matched by more than this many other pictures recurs: the smallest
# count that changed no group of the copy-detection development sets (an original and 4
# copies; at 3, hard-copy pair recall fell 0.870 -> 0.862). Groups of more copies than that
# are kept by the same-picture check: with 2 here, as if every group had more, the
# development sets kept mild pair recall 0.973 and hard 0.821 (0.870).
RECURRING_PARTNERS = 4
# A pair is held by recurring features when fewer than this share of its agreeing features (or
# fewer than MIN_INLIERS) are distinctive: a textured template agrees on hundreds of features,
# and a few dozen of them are matched in few enough pairs to pass for distinctive. 0.25 and 0.5
# changed nothing on the development sets; with groups of more copies simulated as above, 0.25
# kept hard recall at 0.821 and 0.5 at 0.692.
DISTINCTIVE_SHARE = 0.25
# A pair aligned in place (scaled by under ALIGNED_SCALE, turned by under ALIGNED_DEGREES and
# shifted by under ALIGNED_PIXELS at the feature side, not mirrored) is held too: two photos
# pasted into one screenshot template align so by the template alone, whose features look
# distinctive when few of the collection's screenshots are among each other's candidates
# (on augly, 24 of the 29 wrong pairs accepted directly). Copies aligned so that are one
# picture pass the same-picture check.
ALIGNED_SCALE = 0.05
ALIGNED_DEGREES = 2.0
ALIGNED_PIXELS = 6.0


def recurring_features(matches: Mapping[Pair, Match]) -> dict[int, set[int]]:
    """Each picture's recurring features (positions in its LocalFeatures): those among the
    agreeing features of pairs with more than RECURRING_PARTNERS other pictures."""
    partners: dict[tuple[int, int], set[int]] = defaultdict(set)
    for (first, second), found in matches.items():
        for feature in found.first.tolist():
            partners[(first, feature)].add(second)
        for feature in found.second.tolist():
            partners[(second, feature)].add(first)
    recurring: dict[int, set[int]] = defaultdict(set)
    for (picture, feature), others in partners.items():
        if len(others) > RECURRING_PARTNERS:
            recurring[picture].add(feature)
    return recurring


def frame_features(features: LocalFeatures, boxes: list[Box]) -> set[int]:
    """A picture's features outside every picture pasted in it (`boxes`, in its features'
    pixels): its frame, such as a screenshot's page, which copies of other pictures pasted into
    the same frame share; none when nothing is pasted in it."""
    if not boxes:
        return set()
    x, y = features.points[:, 0], features.points[:, 1]
    inside = np.zeros(len(features.points), dtype=bool)
    for left, top, right, bottom in boxes:
        inside |= (x >= left) & (x < right) & (y >= top) & (y < bottom)
    return set(np.flatnonzero(~inside).tolist())


def own_points(features: LocalFeatures, recurring: set[int], found: Match) -> np.ndarray:
    """The positions of the first picture's own features in a pair: those that neither recur
    nor agree with the second picture's (`found`). In two screenshots of one template, its
    pasted photo's."""
    kept = np.ones(len(features.points), dtype=bool)
    kept[list(recurring)] = False
    kept[found.first] = False
    return features.points[kept]


def distinctive_inliers(pair: Pair, found: Match, recurring: Mapping[int, set[int]]) -> int:
    """The pair's agreeing features of which neither side recurs."""
    first, second = recurring.get(pair[0], set()), recurring.get(pair[1], set())
    return sum(
        a not in first and b not in second
        for a, b in zip(found.first.tolist(), found.second.tolist(), strict=True)
    )


def aligned_in_place(found: Match) -> bool:
    """True when the pair's transform is nearly the identity (ALIGNED_*), not mirrored."""
    (a, _, shift_x), (b, _, shift_y) = found.transform
    scale, degrees = float(np.hypot(a, b)), float(np.degrees(np.arctan2(b, a)))
    return (
        not found.mirrored
        and abs(scale - 1) < ALIGNED_SCALE
        and abs(degrees) < ALIGNED_DEGREES
        and float(np.hypot(shift_x, shift_y)) < ALIGNED_PIXELS
    )


def needs_same_picture(pair: Pair, found: Match, recurring: Mapping[int, set[int]]) -> bool:
    """True when the pair verified mostly thanks to recurring features, or aligns in place."""
    if aligned_in_place(found):
        return True
    distinctive = distinctive_inliers(pair, found, recurring)
    return distinctive < max(MIN_INLIERS, DISTINCTIVE_SHARE * found.inliers)
