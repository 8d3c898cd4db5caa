"""Pairs of pictures of different shapes matched again with one stretched to the other's shape: a
copy squeezed or stretched to another aspect ratio keeps too few SIFT features alike to verify."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ris.search.verify import LocalFeatures, grey_features

# Pictures whose aspect ratios differ by this factor or more (the wider's over the narrower's)
# are matched again reshaped: SIFT's descriptors survive a stretch of about a quarter. On augly's
# copies changed in aspect ratio by 1.3-3.1, 2 of the 8 mild and 7 of the 88 hard copies no
# rule joined agreed with their original by 10 features once stretched to its shape, by 0-5 as
# they were (docs/BENCHMARKS.md, "Copies of another shape").
ASPECT_APART = 1.25
# A picture is reshaped to aspect ratios rounded to steps of this factor, so that one reshaped
# picture serves all its partners of about one shape (square tiles, 16:9 photos).
ASPECT_STEP = 1.05


def shapes_differ(first: tuple[int, int], second: tuple[int, int]) -> bool:
    """Whether two pictures' (height, width) differ in aspect ratio by ASPECT_APART or more."""
    ratio = (first[1] / first[0]) / (second[1] / second[0])
    return max(ratio, 1 / ratio) >= ASPECT_APART


def aspect_step(shape: tuple[int, int]) -> int:
    """The (height, width)'s aspect ratio as a whole number of ASPECT_STEPs (its logarithm)."""
    return round(math.log(shape[1] / shape[0]) / math.log(ASPECT_STEP))


@dataclass(frozen=True)
class Reshaped:
    """A picture's features found with it stretched to another shape, in the stretched pixels:
    a copy stretched back to its original's shape matches it under a similarity, as copies do
    (a stretched affine fit on top would also fit two photos of one round moon)."""

    grey: np.ndarray  # the picture stretched
    features: LocalFeatures
    back: np.ndarray  # (2,) the x and y scales taking the stretched pixels back into its own

    def in_own_pixels(self) -> LocalFeatures:
        """The features with their points in the picture's own pixels."""
        return LocalFeatures(self.features.points * self.back, self.features.descriptors)


def reshaped_features(
    grey: np.ndarray, step: int, max_side: int, max_features: int, few_features: int
) -> Reshaped:
    """The features of the grey picture stretched along one side to the aspect ratio of `step`
    ASPECT_STEPs (at most `max_side` on a side), found as `grey_features` finds them."""
    height, width = grey.shape
    ratio = ASPECT_STEP**step
    wide, high = (height * ratio, height) if width / height < ratio else (width, width / ratio)
    scale = min(1.0, max_side / max(wide, high))
    size = (max(1, round(wide * scale)), max(1, round(high * scale)))
    stretched = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    found = grey_features(stretched, max_features, few_features)
    return Reshaped(
        stretched, found, np.array([width / size[0], height / size[1]], dtype=np.float32)
    )
