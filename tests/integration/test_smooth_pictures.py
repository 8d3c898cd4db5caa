"""A faint, smooth picture (a soft wallpaper) and its copy: too few SIFT features to verify at
the usual contrast threshold, detected again at a lower one for duplicate groups. Flat shapes
on a flat ground, on which fewer features than verification asks for agree: one picture pixel
for pixel is a copy, a variant with a shape moved is not."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ris.duplicates.groups import FEATURE_COUNT, FEATURE_FEW, FEATURE_SIDE
from ris.duplicates.verdicts import accepted_pairs
from ris.files.remote import FetchOptions, Remote
from ris.search.same_picture import WEAK_INLIERS, compared
from ris.search.verify import MIN_INLIERS, Pictures, local_features, match
from tests.imagefiles import flat_shapes


def soft_wallpaper(folder: Path) -> tuple[Path, Path]:
    """Colour noise blurred by 16 px, in 60 grey levels; and a copy cropped by a tenth on
    three sides, resized and saved at JPEG 40."""
    noise = np.random.default_rng(3).normal(size=(480, 640, 3)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 16)
    smooth = 100 + (smooth - smooth.min()) / (smooth.max() - smooth.min()) * 60
    wallpaper = Image.fromarray(smooth.astype(np.uint8))
    original, copy = folder / "wallpaper.png", folder / "copy.jpg"
    wallpaper.save(original)
    width, height = wallpaper.size
    cropped = wallpaper.crop((width // 10, height // 10, width * 9 // 10, height))
    cropped.resize((400, 300)).save(copy, quality=40)
    return original, copy


def test_a_soft_wallpaper_and_its_copy_verify_once_detected_at_a_lower_contrast(
    tmp_path: Path,
) -> None:
    original, copy = soft_wallpaper(tmp_path)
    usual = [
        local_features(str(path), 10**8, FEATURE_SIDE, FEATURE_COUNT) for path in (copy, original)
    ]
    again = [
        local_features(str(path), 10**8, FEATURE_SIDE, FEATURE_COUNT, FEATURE_FEW)
        for path in (copy, original)
    ]
    assert all(len(found.points) < 10 for found in usual)
    assert all(len(found.points) > 50 for found in again)
    assert match(*usual) is None or match(*usual).inliers < MIN_INLIERS  # type: ignore[union-attr]
    found = match(*again)
    assert found is not None and found.inliers >= 2 * MIN_INLIERS
    # Through duplicate groups: one group with the features detected again, none without.
    pairs, paths = {(0, 1): 0.9}, {0: str(copy), 1: str(original)}
    remote = Remote(FetchOptions())
    for few, groups in ((0, []), (FEATURE_FEW, [[0, 1]])):
        pictures = Pictures(remote, 10**8, FEATURE_SIDE, FEATURE_COUNT, few)
        verdicts = accepted_pairs(pairs, paths, pictures)
        assert [sorted(group) for group in verdicts.joined.sets()] == groups
    # A picture with features enough is detected as before.
    textured = local_features(str(original), 10**8, FEATURE_SIDE, FEATURE_COUNT, 1)
    assert np.array_equal(textured.points, usual[1].points)


def test_a_textured_photo_keeps_the_features_of_the_usual_threshold(photos: list[Path]) -> None:
    """One detection at the low threshold serves both: a photo with features enough keeps
    exactly those a detection at the usual threshold finds (in another order)."""
    compared = 0
    for path in sorted(photos)[:12]:
        usual = local_features(str(path), 10**8, FEATURE_SIDE, FEATURE_COUNT)
        if len(usual.points) < FEATURE_FEW:
            continue
        kept = local_features(str(path), 10**8, FEATURE_SIDE, FEATURE_COUNT, FEATURE_FEW)
        # One point may carry several orientations: sorted by point and descriptor.
        rows, kept_rows = (np.hstack([found.points, found.descriptors]) for found in (usual, kept))
        assert np.array_equal(rows[np.lexsort(rows.T)], kept_rows[np.lexsort(kept_rows.T)])
        compared += 1
    assert compared >= 6


def test_flat_shapes_too_few_features_agree_on_join_when_one_picture_pixel_for_pixel(
    tmp_path: Path,
) -> None:
    original, copy = tmp_path / "original.png", tmp_path / "copy.jpg"
    flat_shapes(10).save(original)
    # Cropped on three sides, resized, saved at JPEG 30.
    flat_shapes(10).crop((53, 40, 640, 360)).resize((420, 240)).save(copy, quality=30)
    variant_of, variant = tmp_path / "variant_of.png", tmp_path / "variant.jpg"
    flat_shapes(4).save(variant_of)
    flat_shapes(4, moved=40).save(variant, quality=30)
    pictures = Pictures(Remote(FetchOptions()), 10**8, FEATURE_SIDE, FEATURE_COUNT, FEATURE_FEW)
    for first, second, joined in ((copy, original, True), (variant, variant_of, False)):
        features = [pictures.features(str(path)) for path in (first, second)]
        found = match(*features)  # type: ignore[arg-type]
        # Fewer features agree than verification asks for: the pixels decide.
        assert found is not None and WEAK_INLIERS <= found.inliers < MIN_INLIERS, found
        verdicts = accepted_pairs({(0, 1): 0.9}, {0: str(first), 1: str(second)}, pictures)
        assert (verdicts.weak, verdicts.accepted) == (1, int(joined))
        assert verdicts.joined.sets() == ([[0, 1]] if joined else [])


def test_a_smooth_pair_not_one_picture_as_matched_is_compared_the_other_way_round(
    tmp_path: Path,
) -> None:
    """Matching is not symmetric: here the original warped onto its copy's frame correlates
    too little, while the copy warped onto the original's is one picture."""
    original, copy = tmp_path / "original.png", tmp_path / "copy.jpg"
    flat_shapes(33).save(original)
    flat_shapes(33).crop((53, 40, 640, 360)).resize((420, 240)).save(copy, quality=30)
    pictures = Pictures(Remote(FetchOptions()), 10**8, FEATURE_SIDE, FEATURE_COUNT, FEATURE_FEW)
    greys = [pictures.grey(str(path)) for path in (original, copy)]
    features = [pictures.features(str(path)) for path in (original, copy)]
    forward = match(*features, WEAK_INLIERS, stretch=True)  # type: ignore[arg-type]
    assert forward is not None and WEAK_INLIERS <= forward.inliers < MIN_INLIERS, forward
    assert not compared(*greys, forward).confirms_weak_match  # type: ignore[arg-type]
    verdicts = accepted_pairs({(0, 1): 0.9}, {0: str(original), 1: str(copy)}, pictures)
    assert (verdicts.weak, verdicts.accepted) == (1, 1)
    assert verdicts.joined.sets() == [[0, 1]]
