"""Candidates by shared local features: a small crop of a photo, whatever its vector's score,
finds its original through the descriptors they share, far above any other pair of photos;
duplicate groups check such pairs when asked, and unreadable or featureless pictures vote for
nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from ris.duplicates import feature_votes
from ris.duplicates.feature_votes import voted_pairs
from ris.duplicates.groups import FEATURE_COUNT, FEATURE_FEW, FEATURE_SIDE
from ris.duplicates.verdicts import accepted_pairs
from ris.files.remote import FetchOptions, Remote
from ris.search.verify import LocalFeatures, Pictures, local_features
from tests.integration.test_recurring_features import templated


def small_crop(photo: Path, destination: Path, mirror: bool = False) -> Path:
    """A fifth of the picture off its centre, saturated (and flipped left to right when
    `mirror`), saved at JPEG 50."""
    with Image.open(photo) as image:
        rgb = image.convert("RGB")
    width, height = rgb.size
    box = (width * 45 // 100, height * 40 // 100, width * 90 // 100, height * 85 // 100)
    crop = ImageEnhance.Color(rgb.crop(box)).enhance(1.5)
    (ImageOps.mirror(crop) if mirror else crop).save(destination, quality=50)
    return destination


@pytest.fixture(scope="module")
def crop_among_photos(photos: list[Path], tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Twelve sample photos, a mirrored small crop of the second and a small crop of the first,
    last."""
    folder = tmp_path_factory.mktemp("shared")
    mirrored = small_crop(photos[1], folder / "mirrored.jpg", mirror=True)
    return [*photos[:12], mirrored, small_crop(photos[0], folder / "crop.jpg")]


def _features(path: Path) -> LocalFeatures:
    return local_features(str(path), 10**8, FEATURE_SIDE, FEATURE_COUNT, FEATURE_FEW)


@pytest.mark.parametrize("exact_below", [feature_votes.EXACT_BELOW, 0], ids=["exact", "coded"])
def test_a_small_crop_votes_for_its_original_far_above_any_other_pair(
    crop_among_photos: list[Path], exact_below: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Searched exactly (as few descriptors are) and through the inverted file of codes."""
    monkeypatch.setattr(feature_votes, "EXACT_BELOW", exact_below)
    features = [_features(path) for path in crop_among_photos]
    crop = len(features) - 1
    every = voted_pairs(features.__getitem__, len(features), partners=len(features), min_votes=1)
    copies = {(0, crop), (1, crop - 1)}  # the mirrored one votes with its features flipped
    ranked = sorted(every, key=every.__getitem__, reverse=True)
    assert set(ranked[:2]) == copies
    # Different photos share a few textures (sky, foliage): some votes, far fewer (129 against
    # 43 through the coded index with faiss-cpu 1.15.1 and OpenCV 5.1).
    assert min(every[pair] for pair in copies) > 2.5 * every[ranked[2]] > 0
    # Each picture keeps its best partner: each crop's is its original.
    kept = voted_pairs(features.__getitem__, len(features), partners=1, min_votes=1)
    assert copies <= kept.keys() and len(kept) <= len(features)


def test_unreadable_and_featureless_pictures_vote_for_nothing(
    crop_among_photos: list[Path],
) -> None:
    blank = LocalFeatures(np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32))
    original, crop = _features(crop_among_photos[0]), _features(crop_among_photos[-1])
    features = [None, original, blank, None, crop]
    assert set(voted_pairs(features.__getitem__, len(features))) == {(1, 4)}
    assert voted_pairs([None, blank].__getitem__, 2) == {}
    assert voted_pairs(lambda position: None, 0) == {}


def test_groups_check_the_pairs_sharing_features_when_asked(
    crop_among_photos: list[Path],
) -> None:
    """No vector candidates at all: only the shared features make the crop a candidate."""
    paths = {row: str(path) for row, path in enumerate(crop_among_photos)}
    pictures = Pictures(Remote(FetchOptions()), 10**8, FEATURE_SIDE, FEATURE_COUNT, FEATURE_FEW)
    crop = len(paths) - 1
    alone = accepted_pairs({}, paths, pictures, shared_features=False)
    assert alone.joined.sets() == [] and alone.shared == 0
    shared = accepted_pairs({}, paths, pictures, shared_features=True)
    assert sorted(sorted(group) for group in shared.joined.sets()) == [[0, crop], [1, crop - 1]]
    assert shared.shared >= 2 and shared.read == len(paths)


def test_pages_of_one_template_proposed_by_their_shared_features_are_refused(
    photos: list[Path], tmp_path: Path
) -> None:
    """Ten photos pasted into one screenshot frame share the frame's features: shared
    features propose them, and being held by recurring features they are refused, not
    compared pixel for pixel."""
    screenshots = templated(photos, tmp_path)
    paths = {row: str(path) for row, path in enumerate(screenshots)}
    pictures = Pictures(Remote(FetchOptions()), 10**8, FEATURE_SIDE, FEATURE_COUNT, FEATURE_FEW)
    verdicts = accepted_pairs({}, paths, pictures, shared_features=True)
    assert verdicts.shared >= len(screenshots) and verdicts.checked == verdicts.shared
    assert verdicts.joined.sets() == [] and verdicts.compared == 0
