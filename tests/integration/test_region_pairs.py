"""Duplicate pairs on which few features agree, confirmed by the model's vector of the part one
picture lays under the other: a small crop under a disc joins its original; the same alignment
laid over another photo, or a whole picture nearer the crop than the part, does not."""

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ris.dev.services import LocalMilvusLite
from ris.duplicates.groups import FEATURE_COUNT, FEATURE_FEW, FEATURE_SIDE, find_duplicates
from ris.duplicates.region_pairs import RegionCheck, confirmed_by_parts, parts_under
from ris.duplicates.verdicts import accepted_pairs
from ris.embedding.pipeline import EmbeddingPipeline
from ris.files.remote import FetchOptions, Remote
from ris.search.same_picture import WEAK_INLIERS
from ris.search.verify import MIN_INLIERS, Pictures, match
from tests.helpers import indexed_collection
from tests.integration.test_region_vectors import _named
from tests.integration.test_verify import MAX_PIXELS


def _crop_under_a_disc(photo: Path, folder: Path) -> Path:
    """The middle ninth of the picture, blurred, a yellow disc over its top right corner,
    shrunk and saved at JPEG quality 20: few features survive, and the disc fails the pixel
    check."""
    with Image.open(photo) as image:
        width, height = image.size
        crop = image.convert("RGB").crop((width // 3, height // 3, width * 2 // 3, height * 2 // 3))
    edited = crop.filter(ImageFilter.GaussianBlur(1.5))
    radius = min(edited.size) // 3
    ImageDraw.Draw(edited).ellipse(
        [edited.width - 2 * radius, 0, edited.width, 2 * radius], fill=(250, 210, 40)
    )
    path = folder / f"disc-{photo.stem}.jpg"
    edited.resize((crop.width * 3 // 4, crop.height * 3 // 4)).save(path, quality=20)
    return path


def _pictures() -> Pictures:
    return Pictures(Remote(FetchOptions()), MAX_PIXELS, FEATURE_SIDE, FEATURE_COUNT, FEATURE_FEW)


def _check(pipeline: EmbeddingPipeline, paths: dict[int, str], nearest: float) -> RegionCheck:
    """Vectors of `paths` by the model, every row's nearest row scoring `nearest`."""
    vectors = dict(zip(paths, pipeline(list(paths.values())).vectors, strict=True))
    return RegionCheck(
        lambda rows: {row: vectors[row] for row in rows},
        dict.fromkeys(paths, nearest),
        lambda pictures: pipeline(pictures).vectors,
    )


def test_a_weak_pair_is_joined_by_its_part_s_vector_unless_a_whole_picture_is_nearer(
    pipeline: EmbeddingPipeline, photos: list[Path], tmp_path: Path
) -> None:
    """The camera photo's crop under a disc: 4-9 features agree with the original and the
    pixels leave them apart, but the original's part under the crop is a copy of it to the
    model. Joined when no row is nearer the crop than that part, not when one is."""
    original = _named(photos, "camera.png")
    paths = {0: str(_crop_under_a_disc(original, tmp_path)), 1: str(original)}
    pictures = _pictures()
    found = match(*(pictures.features(paths[row]) for row in (0, 1)), WEAK_INLIERS, stretch=True)
    assert found is not None and WEAK_INLIERS <= found.inliers < MIN_INLIERS
    pairs = {(0, 1): 0.6}
    for regions, joined in (
        (None, False),
        (_check(pipeline, paths, 0.5), True),
        (_check(pipeline, paths, 0.99), False),
    ):
        verdicts = accepted_pairs(pairs, paths, pictures, regions=regions)
        assert verdicts.weak == 1
        assert verdicts.by_region == int(joined)
        assert (verdicts.joined.find(0) == verdicts.joined.find(1)) is joined


def test_only_the_picture_the_other_covers_gets_a_part_and_another_photo_s_part_fails(
    pipeline: EmbeddingPipeline, photos: list[Path], tmp_path: Path
) -> None:
    """The crop lies inside its original, so only the crop gets a part (the crop covers a ninth
    of the original); the same alignment laid over another photo gives a part that is no copy
    of the crop to the model."""
    original = _named(photos, "camera.png")
    other = _named(photos, "coffee.png")
    paths = {0: str(_crop_under_a_disc(original, tmp_path)), 1: str(original), 2: str(other)}
    pictures = _pictures()
    found = match(*(pictures.features(paths[row]) for row in (0, 1)), WEAK_INLIERS, stretch=True)
    assert found is not None

    def grey(row: int) -> np.ndarray | None:
        return pictures.grey(paths[row])

    def colour(row: int) -> np.ndarray | None:
        return pictures.colour(paths[row])

    parts = parts_under((0, 1), found, grey, colour)
    assert [part.first for part in parts] == [0]
    check = _check(pipeline, paths, 0.5)
    assert confirmed_by_parts(parts, check) == {(0, 1)}
    elsewhere = parts_under((0, 2), found, grey, colour)
    assert [part.first for part in elsewhere] == [0]
    assert confirmed_by_parts(elsewhere, check) == set()


def test_duplicate_groups_join_the_crop_to_its_original_through_the_model(
    milvus_server: LocalMilvusLite,
    pipeline: EmbeddingPipeline,
    photos: list[Path],
    tmp_path: Path,
) -> None:
    """Through find_duplicates over an indexed collection: the crop under a disc joins its
    original when the model is given, and stays alone without it."""
    original = _named(photos, "camera.png")
    crop = _crop_under_a_disc(original, tmp_path)
    others = [photo for photo in photos if photo != original][:12]
    paths = [*others, original, crop]
    with indexed_collection(milvus_server.url, "region_pairs", pipeline, paths) as index:
        for embed, together in ((None, False), (lambda pictures: pipeline(pictures).vectors, True)):
            report = find_duplicates(index, Remote(FetchOptions()), MAX_PIXELS, embed=embed)
            groups = [{Path(image.path).name for image in group.images} for group in report.groups]
            assert ({crop.name, "camera.png"} in groups) is together
            assert report.region_pairs == int(together)
