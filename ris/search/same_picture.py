"""Two pictures compared pixel for pixel once a match aligns them: the share of cells that still
differ, how their grey levels correlate, and how much of the smaller one the overlap covers.
Duplicate groups ask it of the pairs features alone cannot decide: those held by features that
recur across many pictures (ris/duplicates/recurring.py), and smooth pictures on which too few
features agree; searches ask it of hits on which too few agree with the query."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from ris.search.pasted_pictures import Box
from ris.search.verify import Match

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
# Where at least this many cells of the first picture hold its own features (own_points), or
# lie inside a picture pasted in it (cell_centres: a smooth photo has few features), those cells
# must be one picture too: two screenshots of one template differ only where their pasted
# photos are, which may be under SAME_PICTURE_DIFFERING of the page. Chosen on augly: 4
# refused a true pair there, 8 and 16 none (docs/BENCHMARKS.md, "Stretched copies, crowds and
# content").
CONTENT_CELLS = 8

# A pair whose features agree under one geometry, but fewer of them than verify.MIN_INLIERS (a
# smooth wallpaper, a flat drawing: a few dozen features, or fewer), is a copy when at least
# this many agree and its pictures are one pixel for pixel: the same-picture check passes, the
# blurred grey levels over the overlap correlate by WEAK_CORRELATION, and the overlap covers
# WEAK_COVER of the smaller picture (a copy lies within its original; two overlapping tiles of
# one wallpaper do not). Chosen on augly's and copydetect's candidate pairs that no 10 features
# verified: 4, 0.93 and 0.8 took 22 mild and 17 hard true pairs of augly, 3 and 20 of
# copydetect, and none of their 11,268 wrong ones; at 0.9, two tiles of one wallpaper passed,
# a pair both sets hold (docs/BENCHMARKS.md, "Smooth pairs confirmed pixel for pixel").
WEAK_INLIERS = 4
WEAK_CORRELATION = 0.93
WEAK_COVER = 0.8


@dataclass(frozen=True)
class Comparison:
    """Two pictures aligned by a match, compared pixel for pixel."""

    # The share of the first picture's cells over the overlap that differ (or, where larger,
    # of those holding the content points asked about); 1.0 when they hardly overlap.
    differing: float
    # The correlation of their blurred grey levels over the overlap.
    correlation: float
    # The overlap, as a share of the smaller picture's area.
    cover: float
    # Measures `differing_back`, only when asked: it costs about half the comparison, and only
    # duplicate groups' held pairs ask.
    measure_back: Callable[[], float] = field(repr=False, compare=False)

    @functools.cached_property
    def differing_back(self) -> float:
        """The share that differ the other way round: the first picture's grey levels mapped
        onto the second's. The line that maps a picture's levels onto a faded (low-contrast)
        one's is nearly flat when the two hardly correlate, so a faded first picture differs by
        under DIFFERING_LEVELS from anything laid on it: only this way round shows it."""
        return self.measure_back()

    @property
    def same_picture(self) -> bool:
        return self.differing <= SAME_PICTURE_DIFFERING

    @property
    def same_picture_both_ways(self) -> bool:
        """One picture whichever of the two is mapped onto the other's grey levels."""
        return max(self.differing, self.differing_back) <= SAME_PICTURE_DIFFERING

    @property
    def confirms_weak_match(self) -> bool:
        return (
            self.same_picture and self.correlation >= WEAK_CORRELATION and self.cover >= WEAK_COVER
        )


APART = Comparison(1.0, 0.0, 0.0, lambda: 1.0)


def cell_centres(boxes: Sequence[Box]) -> np.ndarray:
    """(x, y) of the centre of every CELL inside the boxes (in a picture's pixels): as
    `content`, they make the cells of pictures pasted in the first picture count too."""
    centres = [
        (x, y)
        for left, top, right, bottom in boxes
        for y in np.arange(top // CELL * CELL + CELL / 2, bottom, CELL)
        if y >= top
        for x in np.arange(left // CELL * CELL + CELL / 2, right, CELL)
        if x >= left
    ]
    return np.array(centres, dtype=np.float32).reshape(-1, 2)


@dataclass(frozen=True)
class Aligned:
    """Two grey pictures blurred, the second aligned onto the first (0 where it does not
    reach), and which of the first's pixels it covers."""

    first: np.ndarray  # float32
    second: np.ndarray  # float32
    covered: np.ndarray  # bool


def point_map(found: Match) -> np.ndarray:
    """The 2 x 3 transform taking the first picture's points onto the second's, the flip of a
    mirrored match included."""
    flip = np.diag([-1.0 if found.mirrored else 1.0, 1.0, 1.0])
    return (np.vstack([found.transform, [0.0, 0.0, 1.0]]) @ flip)[:2]


def reversed_match(found: Match) -> Match:
    """`found` the other way round: the second picture's points onto the first's."""
    inverse = np.vstack([cv2.invertAffineTransform(found.transform), [0.0, 0.0, 1.0]])
    if found.mirrored:  # first = flip(inverse(second)) = (flip inverse flip)(flip(second))
        flip = np.diag([-1.0, 1.0, 1.0])
        inverse = flip @ inverse @ flip
    return Match(found.second, found.first, inverse[:2], found.mirrored)


def aligned(first: np.ndarray, second: np.ndarray, found: Match) -> Aligned | None:
    """The second picture aligned onto the first by `found` (grey pictures, in the pixels their
    features were found at), both blurred; None when they overlap by less than a cell or the
    first is smaller than one."""
    onto_second = point_map(found)
    height, width = first.shape
    second = second.astype(np.float32)
    warp = cv2.WARP_INVERSE_MAP
    warped = cv2.warpAffine(second, onto_second, (width, height), flags=warp | cv2.INTER_LINEAR)
    covered = (
        cv2.warpAffine(
            np.ones_like(second), onto_second, (width, height), flags=warp | cv2.INTER_NEAREST
        )
        > 0.5
    )
    if height < CELL or width < CELL or covered.sum() < CELL * CELL:
        return None
    return Aligned(
        cv2.GaussianBlur(first.astype(np.float32), (0, 0), BLUR_SIGMA),
        cv2.GaussianBlur(np.where(covered, warped, 0), (0, 0), BLUR_SIGMA),
        covered,
    )


def compared(
    first: np.ndarray, second: np.ndarray, found: Match, content: np.ndarray | None = None
) -> Comparison:
    """The second picture aligned onto the first by `found` and compared with it (grey
    pictures, in the pixels their features were found at). With `content` (points in the first
    picture), the cells holding them must be one picture too (CONTENT_CELLS)."""
    pair = aligned(first, second, found)
    if pair is None:
        return APART
    # The second picture's area in the first's pixels: the transform scales areas by its
    # determinant.
    (a, b), (c, d) = found.transform[:, :2].tolist()
    return aligned_compared(
        pair, min(first.size, second.size / max(abs(a * d - b * c), 1e-9)), content
    )


def aligned_compared(
    pair: Aligned, second_area: float, content: np.ndarray | None = None
) -> Comparison:
    """Two pictures already aligned, compared as `compared` does; `second_area` is the second
    picture's area in the first's pixels (for the cover)."""
    source, target = pair.second[pair.covered], pair.first[pair.covered]
    cover = float(pair.covered.sum()) / second_area
    differing = _differing_share(pair.first, pair.second, pair.covered, source, target, content)
    back = functools.partial(
        _differing_share, pair.second, pair.first, pair.covered, target, source, content
    )
    return Comparison(differing, correlation(source, target), min(1.0, cover), back)


def region_compared(
    first: np.ndarray,
    second: np.ndarray,
    found: Match,
    scales: tuple[float, float],
    box: Box,
) -> Comparison | None:
    """The `box` of the first picture compared with the second aligned onto it, both read
    larger: `found` and `box` are in the pixels the features were found at, and `first` and
    `second` are the pictures at `scales` times those. None when the box spans under two
    cells a side even so."""
    first_scale, second_scale = scales
    left, top, right, bottom = (round(value * first_scale) for value in box)
    if min(right - left, bottom - top) < 2 * CELL:
        return None
    linear = found.transform[:, :2] * (second_scale / first_scale)
    # The box's pixels counted from its corner, flipped first when the match is mirrored.
    corner = np.array([-left if found.mirrored else left, top], dtype=np.float64)
    shift = found.transform[:, 2] * second_scale + linear @ corner
    inside = Match(found.first, found.second, np.hstack([linear, shift[:, None]]), found.mirrored)
    return compared(first[top:bottom, left:right], second, inside)


def correlation(source: np.ndarray, target: np.ndarray) -> float:
    """Pearson's correlation; 0.0 when either side is flat."""
    source = source - source.mean()
    target = target - target.mean()
    spread = math.sqrt(float(source @ source) * float(target @ target))
    return float(source @ target) / spread if spread > 0 else 0.0


def _differing_share(
    first: np.ndarray,
    aligned: np.ndarray,
    covered: np.ndarray,
    source: np.ndarray,
    target: np.ndarray,
    content: np.ndarray | None,
) -> float:
    """The share of the first picture's cells over the overlap that differ from the aligned
    second's, its grey levels mapped onto the first's (`source` and `target`: the two over the
    overlap); with `content`, the larger of that and the share among the cells holding it."""
    height, width = first.shape
    rows, columns = height // CELL, width // CELL
    # One line maps the aligned grey levels onto the first's: contrast and brightness edits.
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
