"""Pictures pasted small in a picture (a photo shown in a page) compared read larger: at the
features' side a few cells hold them, too few for the pixel check to tell two photos shown in one
template apart, so two such pages passed for one picture by their template alone."""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence

import numpy as np

from ris.search.pasted_pictures import Box
from ris.search.same_picture import (
    APART,
    CELL,
    CONTENT_CELLS,
    Comparison,
    cell_centres,
    point_map,
    region_compared,
    reversed_match,
)
from ris.search.verify import MIN_INLIERS, Match, Pictures, grey_features, match

# A pasted picture holding fewer than CONTENT_CELLS cells at the features' side is looked at
# with both pictures read larger, its shorter side then this many cells, at most DETAIL_SIDE
# pixels a side...
DETAIL_CELLS = 6
DETAIL_SIDE = 2048
# ...and a picture must then be at least this many times its size at the features' side, or its
# file holds no more detail than was compared already.
LARGER = 1.5
# A pasted picture with this many features read larger is one picture with the other picture
# only when MIN_INLIERS of them agree with it under one geometry; one with fewer (a smooth
# photo) must be one picture pixel for pixel there instead.
DETAIL_FEATURES = 30
# Pixels from a picture's sides (at the features' side) within which a box counts as at its edge.
EDGE = 4


def small_boxes(boxes: Sequence[Box]) -> list[Box]:
    """The pasted pictures holding fewer than CONTENT_CELLS cells at the features' side."""
    return [box for box in boxes if len(cell_centres([box])) < CONTENT_CELLS]


def _inside(box: Box, shape: tuple[int, ...], transform: np.ndarray | None = None) -> bool:
    """Whether the box (mapped by `transform`, 2 x 3, when given) lies in a picture of
    `shape` more than EDGE pixels from its sides: a flat region at a photo's edge passes for a
    pasted picture (a sky, a wall), and a crop holds only part of the other picture."""
    left, top, right, bottom = box
    corners = np.array([[left, top], [right, top], [left, bottom], [right, bottom]], float)
    if transform is not None:
        corners = corners @ transform[:, :2].T + transform[:, 2]
    height, width = shape[:2]
    return bool(
        (corners.min(axis=0) > EDGE).all()
        and (corners.max(axis=0) < [width - EDGE, height - EDGE]).all()
    )


def with_pasted_detail(
    comparison: Comparison,
    pictures: Pictures,
    paths: tuple[str, str],
    greys: tuple[np.ndarray, np.ndarray],
    found: Match,
    boxes: tuple[Sequence[Box], Sequence[Box]],
) -> Comparison:
    """`comparison` of a pair the pixel check passed (`paths`, `greys` at the features' side,
    aligned by `found`), unless a picture pasted small in either picture (`boxes`, each
    picture's) is not found in the other once both are read larger: then APART. Unchanged when
    its files hold no more detail."""
    candidates = (small_boxes(boxes[0]), small_boxes(boxes[1]))
    if not any(candidates):
        return comparison
    # Each picture's boxes onto the other's pixels: the second's through the match reversed.
    matches = (found, reversed_match(found))
    onto = (point_map(matches[0]), point_map(matches[1]))
    small = tuple(
        [
            box
            for box in candidates[this]
            if _inside(box, greys[this].shape) and _inside(box, greys[1 - this].shape, onto[this])
        ]
        for this in (0, 1)
    )
    if not any(small):
        return comparison
    shortest = min(
        min(right - left, bottom - top) for left, top, right, bottom in itertools.chain(*small)
    )
    side = min(DETAIL_SIDE, math.ceil(pictures.max_side * DETAIL_CELLS * CELL / max(shortest, 1)))
    first, second = pictures.grey(paths[0], side), pictures.grey(paths[1], side)
    if first is None or second is None:
        return comparison
    larger = (first, second)
    scales = (larger[0].shape[1] / greys[0].shape[1], larger[1].shape[1] / greys[1].shape[1])
    # Each picture's features read larger, found once for all its partner's boxes.
    whole = functools.cache(lambda number: grey_features(larger[number]))
    for this, other in ((0, 1), (1, 0)):
        if scales[this] < LARGER:
            continue
        for box in small[this]:
            left, top, right, bottom = (round(value * scales[this]) for value in box)
            features = grey_features(larger[this][top:bottom, left:right])
            if len(features.points) >= DETAIL_FEATURES:
                agreeing = match(features, whole(other), MIN_INLIERS)
                if agreeing is None or agreeing.inliers < MIN_INLIERS:
                    return APART
                continue
            detail = region_compared(
                larger[this], larger[other], matches[this], (scales[this], scales[other]), box
            )
            if detail is not None and not detail.same_picture_both_ways:
                return APART
    return comparison
