"""Two pictures compared pixel for pixel once a match aligns them, on made-up smooth pictures
and hand-made matches: what confirms a pair too few features agree on."""

from __future__ import annotations

import cv2
import numpy as np

from ris.search.same_picture import WEAK_COVER, cell_centres, compared
from ris.search.verify import Match


def smooth(seed: int, height: int = 240, width: int = 320) -> np.ndarray:
    """Grey noise blurred by 12 px, stretched over 20-230: a soft wallpaper."""
    noise = np.random.default_rng(seed).normal(size=(height, width)).astype(np.float32)
    blurred = cv2.GaussianBlur(noise, (0, 0), 12)
    return (20 + (blurred - blurred.min()) / np.ptp(blurred) * 210).astype(np.uint8)


def shifted(left: float, top: float, scale: float = 1.0) -> Match:
    """A match whose transform takes the first picture's (x, y) to scale * (x, y) + (left, top)
    in the second's: the first is the second's window at (left, top)."""
    transform = np.array([[scale, 0.0, left], [0.0, scale, top]])
    return Match(np.arange(4), np.arange(4), transform, False)


def test_a_crop_of_a_smooth_picture_is_one_picture_with_it_covering_the_crop() -> None:
    original = smooth(1)
    crop = original[30:210, 40:280]
    comparison = compared(crop, original, shifted(40, 30))
    assert comparison.differing == 0.0
    assert comparison.correlation > 0.999
    assert comparison.cover == 1.0  # the crop lies wholly within the original
    assert comparison.confirms_weak_match
    # Either way round: the original aligned onto its crop covers all of the crop.
    back = compared(original, crop, shifted(-40, -30))
    assert back.cover == 1.0 and back.confirms_weak_match


def test_brighter_flatter_and_half_size_copies_still_confirm() -> None:
    original = smooth(2)
    edited = np.clip(original.astype(np.float32) * 0.6 + 60, 0, 255).astype(np.uint8)
    assert compared(edited, original, shifted(0, 0)).confirms_weak_match
    half = cv2.resize(original, (160, 120), interpolation=cv2.INTER_AREA)
    comparison = compared(half, original, shifted(0, 0, scale=2.0))
    assert comparison.correlation > 0.99 and comparison.confirms_weak_match


def test_overlapping_tiles_of_one_picture_agree_but_do_not_cover_each_other() -> None:
    wide = smooth(3, 240, 560)
    left, right = wide[:, :320], wide[:, 240:]
    comparison = compared(right, left, shifted(240, 0))
    # Where they overlap they are one picture, but a quarter of either is no copy of the other.
    assert comparison.differing == 0.0 and comparison.correlation > 0.95
    assert comparison.cover == 80 / 320 < WEAK_COVER
    assert not comparison.confirms_weak_match


def test_other_smooth_pictures_and_a_negative_do_not_confirm() -> None:
    first = smooth(4)
    for second in (smooth(5), smooth(6), 255 - first):
        comparison = compared(first, second, shifted(0, 0))
        assert comparison.cover == 1.0
        assert comparison.correlation < 0.5, comparison
        assert not comparison.confirms_weak_match


def test_pictures_that_hardly_overlap_differ_everywhere() -> None:
    first = smooth(7)
    # A 5 px strip holds no whole cell; 320 px further, nothing overlaps.
    strip = compared(first, first, shifted(315, 0))
    assert strip.differing == 1.0 and strip.cover < 0.02
    nothing = compared(first, first, shifted(320, 0))
    assert (nothing.differing, nothing.correlation, nothing.cover) == (1.0, 0.0, 0.0)
    assert not strip.confirms_weak_match and not nothing.confirms_weak_match


def test_cell_centres_cover_the_cells_inside_a_box() -> None:
    """A box from (20, 10) to (70, 40) holds cell centres 24-56 across and 24 down (cells of
    16 px whose centre lies inside it); an empty list of boxes holds none."""
    centres = cell_centres([(20.0, 10.0, 70.0, 40.0)])
    assert sorted(map(tuple, centres.tolist())) == [(x, 24.0) for x in (24.0, 40.0, 56.0)]
    assert cell_centres([]).shape == (0, 2)
