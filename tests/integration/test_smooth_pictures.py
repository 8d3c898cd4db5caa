"""A faint, smooth picture (a soft wallpaper) and its copy: too few SIFT features to verify at
the usual contrast threshold, detected again at a lower one for duplicate groups."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ris.files.remote import FetchOptions, Remote
from ris.search.duplicates import FEATURE_COUNT, FEATURE_FEW, FEATURE_SIDE, accepted_pairs
from ris.search.verify import MIN_INLIERS, Pictures, local_features, match


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
