"""Duplicate pairs of pictures of different shapes: a copy squeezed or stretched to another aspect
ratio matches its original once stretched back, and other photos of other shapes do not."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ris.dev.services import LocalMilvusLite
from ris.duplicates.groups import FEATURE_COUNT, FEATURE_FEW, FEATURE_SIDE, find_duplicates
from ris.duplicates.reshaped_pairs import aspect_step, reshaped_features, shapes_differ
from ris.duplicates.verdicts import accepted_pairs
from ris.embedding.pipeline import EmbeddingPipeline
from ris.files.remote import FetchOptions, Remote
from ris.search.verify import MIN_INLIERS, Pictures, match
from tests.helpers import indexed_collection
from tests.imagefiles import web_page
from tests.integration.test_region_vectors import _named
from tests.integration.test_verify import MAX_PIXELS


def _reshaped_copy(photo: Path, folder: Path, width: float, height: float) -> Path:
    """The picture resized by `width` and `height` (an aspect ratio changed), at JPEG 40."""
    with Image.open(photo) as image:
        size = (round(image.width * width), round(image.height * height))
        path = folder / f"reshaped-{width}-{height}-{photo.name}.jpg"
        image.convert("RGB").resize(size).save(path, quality=40)
    return path


def _pictures() -> Pictures:
    return Pictures(Remote(FetchOptions()), MAX_PIXELS, FEATURE_SIDE, FEATURE_COUNT, FEATURE_FEW)


def test_shapes_are_compared_by_aspect_ratio() -> None:
    assert not shapes_differ((100, 120), (200, 230))
    assert shapes_differ((100, 100), (100, 125))
    assert shapes_differ((250, 100), (100, 100))
    assert aspect_step((100, 100)) == 0
    assert aspect_step((100, 200)) == -aspect_step((200, 100)) == 14  # 1.05**14 is about 2


def test_reshaped_features_lie_in_the_picture_s_own_pixels(photos: list[Path]) -> None:
    """Found in the picture stretched to twice its width, the points lie in the stretched
    picture's pixels, and come back inside the picture's own, spread over it."""
    grey = _pictures().grey(str(_named(photos, "camera.png")))
    assert grey is not None
    reshaped = reshaped_features(grey, 14, FEATURE_SIDE, FEATURE_COUNT, FEATURE_FEW)
    # Twice as wide at the same long side: half as high.
    assert reshaped.features.points[:, 1].max() <= grey.shape[0] / 2 + 1
    features = reshaped.in_own_pixels()
    height, width = grey.shape
    assert len(features.points) >= MIN_INLIERS
    assert features.points.min() >= -1
    assert (features.points.max(axis=0) <= [width, height]).all()
    assert features.points[:, 0].max() - features.points[:, 0].min() > width / 2


@pytest.mark.parametrize(("width", "height"), [(1.0, 0.4), (2.5, 1.0)])
def test_a_squeezed_copy_joins_its_original_only_reshaped(
    photos: list[Path], tmp_path: Path, width: float, height: float
) -> None:
    """Squeezed to 0.4 of its height, or stretched to 2.5 times its width: too few features
    agree to verify the copy as it is; stretched back, it verifies."""
    pictures = _pictures()
    for name in ("camera.png", "coffee.png", "astronaut.png"):
        original = _named(photos, name)
        paths = {0: str(_reshaped_copy(original, tmp_path, width, height)), 1: str(original)}
        found = match(*(pictures.features(paths[row]) for row in (0, 1)), stretch=True)
        assert found is None or found.inliers < MIN_INLIERS
        pairs = {(0, 1): 0.7}
        for reshape in (False, True):
            verdicts = accepted_pairs(pairs, paths, pictures, reshape=reshape)
            assert verdicts.reshaped == int(reshape), name
            assert (verdicts.joined.find(0) == verdicts.joined.find(1)) is reshape


def test_other_photos_of_other_shapes_are_not_joined(photos: list[Path], tmp_path: Path) -> None:
    """Every squeezed copy against every other photo: each pair differs in shape and is matched
    reshaped, and none joins."""
    others = [photo for photo in photos if photo.suffix in (".png", ".jpg")][:8]
    copies = [_reshaped_copy(photo, tmp_path, 1.0, 0.4) for photo in others]
    paths = {row: str(path) for row, path in enumerate([*others, *copies])}
    pairs = {
        (row, len(others) + column): 0.7
        for row in range(len(others))
        for column in range(len(copies))
        if row != column
    }
    verdicts = accepted_pairs(pairs, paths, _pictures(), reshape=True)
    assert verdicts.accepted == verdicts.reshaped == 0
    assert all(len(group) == 1 for group in verdicts.joined.sets())


def test_pages_of_one_template_are_not_joined_when_one_is_squeezed(
    photos: list[Path], tmp_path: Path
) -> None:
    """Two pages of one made-up template showing different photos, one page squeezed to 0.6 of
    its height: stretched back, the page's features agree, but they lie on the frame around
    the pasted photo, so the pair is refused (without the frame and in-place checks it joins)."""
    pictures = _pictures()
    for first, second in (("camera.png", "coffee.png"), ("astronaut.png", "chelsea.png")):
        page, _ = web_page(_named(photos, first), tmp_path, 300)
        other, _ = web_page(_named(photos, second), tmp_path, 300)
        squeezed = _reshaped_copy(other, tmp_path, 1.0, 0.6)
        verdicts = accepted_pairs(
            {(0, 1): 0.8}, {0: str(page), 1: str(squeezed)}, pictures, reshape=True
        )
        assert verdicts.accepted == verdicts.reshaped == 0, (first, second)


def test_duplicate_groups_join_a_squeezed_copy(
    milvus_server: LocalMilvusLite,
    pipeline: EmbeddingPipeline,
    photos: list[Path],
    tmp_path: Path,
) -> None:
    """Through find_duplicates over an indexed collection: the squeezed copy joins its original
    where shared features are looked for (collections this small, by default), not without."""
    original = _named(photos, "camera.png")
    copy = _reshaped_copy(original, tmp_path, 1.0, 0.4)
    others = [photo for photo in photos if photo != original][:12]
    paths = [*others, original, copy]
    with indexed_collection(milvus_server.url, "reshaped_pairs", pipeline, paths) as index:
        for shared_features in (False, True):
            report = find_duplicates(
                index, Remote(FetchOptions()), MAX_PIXELS, shared_features=shared_features
            )
            groups = [{Path(image.path).name for image in group.images} for group in report.groups]
            assert ({copy.name, "camera.png"} in groups) is shared_features
            assert report.reshaped_pairs == int(shared_features)


def test_a_picture_reshaped_once_serves_its_partners_of_one_shape() -> None:
    """Aspect ratios within one step of each other round to one reshaped picture."""
    assert aspect_step((1000, 1600)) == aspect_step((1000, 1620))
    assert np.isclose(1.05 ** aspect_step((1000, 1600)), 1.6, rtol=0.03)
