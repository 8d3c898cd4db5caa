"""Features that recur across many pictures (a screenshot template, a frame, a logo) prove
nothing about a pair: a pair held together only by them, or aligned in place as two
screenshots of one template are, must be one picture, pixel for pixel once aligned, or it is
no copy. Burstiness, as instance retrieval calls it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

import cv2
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
# The same-picture check: both pictures as features are extracted (grey, at most the feature
# side), the second aligned onto the first, blurred, its grey levels mapped onto the first's
# by one line, then compared in cells of this many pixels a side...
CELL = 16
BLUR_SIGMA = 2.0
# ...where a cell differs when its mean difference exceeds this many grey levels...
DIFFERING_LEVELS = 30.0
# ...and one picture has at most this share of its overlap's cells differing: the smallest
# share keeping as many hard copies of the development sets as any larger one (0.05-0.15,
# with the partner count at 2 and 3). The template pairs of the held-out AugLy sets differ in
# 0.10-0.60 of their cells (5th-95th percentile): the pasted photo.
SAME_PICTURE_DIFFERING = 0.08
# A cell counts when this much of it lies in the overlap.
CELL_OVERLAP = 0.9
# Where at least this many cells of the first picture hold its own features (own_points),
# those cells must be one picture too: two screenshots of one template differ only where their
# pasted photos are, which may be under SAME_PICTURE_DIFFERING of the page. Chosen on augly: 4
# refused a true pair there, 8 and 16 none (docs/BENCHMARKS.md, "Stretched copies, crowds and
# content").
CONTENT_CELLS = 8


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


def differing_share(
    first: np.ndarray, second: np.ndarray, found: Match, content: np.ndarray | None = None
) -> float:
    """The share of the first picture's cells, over the part the second covers, that still
    differ once the second is aligned onto it (grey pictures, in the pixels their features
    were found at); 1.0 when they hardly overlap. With `content` (points in the first
    picture), the larger of that and the share among the cells holding them (CONTENT_CELLS)."""
    flip = np.diag([-1.0 if found.mirrored else 1.0, 1.0, 1.0])
    onto_second = (np.vstack([found.transform, [0.0, 0.0, 1.0]]) @ flip)[:2]
    height, width = first.shape
    first = first.astype(np.float32)
    second = second.astype(np.float32)
    warp = cv2.WARP_INVERSE_MAP
    aligned = cv2.warpAffine(second, onto_second, (width, height), flags=warp | cv2.INTER_LINEAR)
    covered = (
        cv2.warpAffine(
            np.ones_like(second), onto_second, (width, height), flags=warp | cv2.INTER_NEAREST
        )
        > 0.5
    )
    rows, columns = height // CELL, width // CELL
    if rows == 0 or columns == 0 or covered.sum() < CELL * CELL:
        return 1.0
    first = cv2.GaussianBlur(first, (0, 0), BLUR_SIGMA)
    aligned = cv2.GaussianBlur(np.where(covered, aligned, 0), (0, 0), BLUR_SIGMA)
    # One line maps the aligned grey levels onto the first's: contrast and brightness edits.
    source, target = aligned[covered], first[covered]
    (slope, offset), *_ = np.linalg.lstsq(
        np.stack([source, np.ones_like(source)], axis=1), target, rcond=None
    )
    difference = np.abs(first - (slope * aligned + offset))

    def cells(values: np.ndarray) -> np.ndarray:
        return (
            values[: rows * CELL, : columns * CELL]
            .reshape(rows, CELL, columns, CELL)
            .sum(axis=(1, 3))
        )

    overlap = cells(covered.astype(np.float32))
    counted = overlap >= CELL_OVERLAP * CELL * CELL
    if not counted.any():
        return 1.0
    mean_difference = cells(np.where(covered, difference, 0)) / np.maximum(overlap, 1)
    differing = mean_difference > DIFFERING_LEVELS
    share = float((differing & counted).sum() / counted.sum())
    if content is not None and len(content):
        column, row = (content // CELL).astype(int).T  # points are (x, y)
        inside = (row < rows) & (column < columns)
        holding = np.zeros_like(counted)
        holding[row[inside], column[inside]] = True
        holding &= counted
        if holding.sum() >= CONTENT_CELLS:
            share = max(share, float((differing & holding).sum() / holding.sum()))
    return share


def is_same_picture(
    first: np.ndarray, second: np.ndarray, found: Match, content: np.ndarray | None = None
) -> bool:
    return differing_share(first, second, found, content) <= SAME_PICTURE_DIFFERING
