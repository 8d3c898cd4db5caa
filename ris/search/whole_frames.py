"""A search's query and a hit compared frame to frame, where too few features agree to align
them: a mild copy of a smooth picture (made grey, overlaid, framed, stretched) has few."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ris.embedding.imaging import frame_box
from ris.search.same_picture import (
    SAME_PICTURE_DIFFERING,
    Aligned,
    aligned,
    aligned_compared,
    correlation,
)
from ris.search.verify import Match

# A hit is one picture with the query frame to frame when at most SAME_PICTURE_DIFFERING of
# the cells differ (same_picture.py) and what is left of the grey levels once a smooth surface
# (a quadratic in x and y) is taken off each correlates by this much: a gradient alone, which
# every tile of a sky has, does not count. Chosen on the searches of augly-, augly3- and
# augly5-mild, augly-hard and copydetect-hard that verified nothing (a one-off over exact
# search, the 5 nearest hits): at 0.7 the best hit passing was the original in 44 searches and
# another picture in none; 0.6-0.8 put the same 3 originals first, 0.9 one of them
# (docs/BENCHMARKS.md, "Hits compared frame to frame").
FRAME_CORRELATION = 0.7
# Every this many pixels, in both directions, fit the smooth surface: it is smooth.
SURFACE_STEP = 4


@dataclass(frozen=True)
class FrameComparison:
    """How alike two pictures are frame to frame: the share of cells that differ, and the
    correlation of what a smooth surface leaves of their grey levels."""

    differing: float
    structure: float

    @property
    def same_picture(self) -> bool:
        return self.differing <= SAME_PICTURE_DIFFERING and self.structure >= FRAME_CORRELATION


def frames_compared(first: np.ndarray, second: np.ndarray) -> FrameComparison:
    """Two grey pictures, each inside its frame (a border of one colour), the second stretched
    onto the first, as it is or flipped left to right: the better of the two comparisons."""
    first_box, second_box = _inside_frame(first), _inside_frame(second)
    comparisons = []
    for mirrored in (False, True):
        found = _frame_onto_frame(first_box, second_box, mirrored)
        pair = aligned(first, second, found)
        if pair is not None:
            differing = aligned_compared(pair, first.size).differing
            comparisons.append(FrameComparison(differing, _structure(pair)))
    return max(comparisons, key=lambda c: c.structure, default=FrameComparison(1.0, 0.0))


def _inside_frame(grey: np.ndarray) -> tuple[int, int, int, int]:
    height, width = grey.shape
    return frame_box(Image.fromarray(grey)) or (0, 0, width, height)


def _frame_onto_frame(
    first: tuple[int, int, int, int], second: tuple[int, int, int, int], mirrored: bool
) -> Match:
    """The transform taking the first box onto the second (after flipping the first picture
    left to right when `mirrored`), as a match with no features."""
    left, top, right, bottom = first
    to_left, to_top, to_right, to_bottom = second
    x_scale, y_scale = (to_right - to_left) / (right - left), (to_bottom - to_top) / (bottom - top)
    # Flipped, the first's x is -x: its right edge, -right, goes to the second's left edge.
    x_offset = to_left + (right if mirrored else -left) * x_scale
    transform = np.array([[x_scale, 0.0, x_offset], [0.0, y_scale, to_top - top * y_scale]])
    nothing = np.zeros(0, dtype=int)
    return Match(nothing, nothing, transform, mirrored)


def _structure(pair: Aligned) -> float:
    """The correlation of the two pictures' grey levels over the overlap once the smooth
    surface fitted to each is taken off."""
    step = (slice(None, None, SURFACE_STEP),) * 2
    covered = pair.covered[step]
    height, width = covered.shape
    y, x = np.mgrid[0:height, 0:width]
    x, y = x[covered] / width - 0.5, y[covered] / height - 0.5
    surface = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)
    left = []
    for picture in (pair.first, pair.second):
        levels = picture[step][covered].astype(np.float64)
        fitted, *_ = np.linalg.lstsq(surface, levels, rcond=None)
        left.append(levels - surface @ fitted)
    return correlation(*left)
