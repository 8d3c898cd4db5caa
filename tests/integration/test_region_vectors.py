"""Hits on which few features agree, confirmed by the model's vector of their part under the
query: a small crop under heavy edits comes first; a chance match does not."""

from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageFilter

from ris.embedding.pipeline import EmbeddingPipeline
from ris.index.milvus import MilvusIndex
from ris.search.image_search import ImageSearch
from ris.search.region_vectors import region_under
from ris.search.same_picture import WEAK_INLIERS
from ris.search.verify import MIN_INLIERS, Match
from tests.placed import at, record

MAX_PIXELS = 10**8


def _small_blurred_crop(photo: Path, folder: Path) -> Path:
    """The middle ninth of the picture, blurred, shrunk and saved at JPEG quality 20."""
    with Image.open(photo) as image:
        width, height = image.size
        crop = image.convert("RGB").crop((width // 3, height // 3, width * 2 // 3, height * 2 // 3))
    edited = crop.filter(ImageFilter.GaussianBlur(1.5))
    path = folder / f"small-{photo.stem}.jpg"
    edited.resize((crop.width * 3 // 4, crop.height * 3 // 4)).save(path, quality=20)
    return path


def _named(photos: list[Path], name: str) -> Path:
    return next(photo for photo in photos if photo.name == name)


def _search(pipeline: EmbeddingPipeline, index: MilvusIndex, region: bool) -> ImageSearch:
    return ImageSearch(
        pipeline, index, 10, MAX_PIXELS, verify_weak=True, verify_frames=True, verify_region=region
    )


def test_a_small_heavily_edited_crop_s_original_comes_first_by_its_region(
    pipeline: EmbeddingPipeline, index: MilvusIndex, photos: list[Path], tmp_path: Path
) -> None:
    """A ninth of the coins photo, blurred and at JPEG 20: too few features agree with the
    original to verify, nor is it one picture with it pixel for pixel, and its vector is
    farther from the query than two other photos'. The original's part under the query, as
    those features align it, is nearer the query to the model than those photos are, so it
    comes first, unverified; not without RIS_VERIFY_REGION, nor when a whole photo is nearer
    the query than that part."""
    original = _named(photos, "coins.png")
    query = _small_blurred_crop(original, tmp_path)
    near = pipeline([str(query)]).vectors[0]
    for region, nearest, first in (
        (True, 0.7, original),
        (False, 0.7, photos[0]),
        (True, 0.85, photos[0]),
    ):
        placed = [(photos[0], nearest), (photos[1], 0.65), (original, 0.5)]
        index.upsert([record(str(path), at(near, score)) for path, score in placed])
        index.flush()
        results = _search(pipeline, index, region)(str(query), 3).results
        assert results[0].path == str(first)
        assert not any(result.verified for result in results)
    weak = next(result for result in results if result.path == str(original))
    assert weak.inliers is not None and WEAK_INLIERS <= weak.inliers < MIN_INLIERS


def test_a_hit_few_features_agree_with_by_chance_stays_in_its_place(
    pipeline: EmbeddingPipeline, index: MilvusIndex, photos: list[Path], tmp_path: Path
) -> None:
    """A small blurred crop of the brick wall, whose original is not indexed: 4 features agree
    with a photo of something else by chance, and that photo's part under the query is no
    brick wall to the model, so the nearest photo stays first."""
    query = _small_blurred_crop(_named(photos, "brick.png"), tmp_path)
    chance = _named(photos, "imagenet_03_990.jpg")
    near = pipeline([str(query)]).vectors[0]
    placed = [(photos[0], 0.8), (chance, 0.7)]
    index.upsert([record(str(path), at(near, score)) for path, score in placed])
    index.flush()
    results = _search(pipeline, index, True)(str(query), 2).results
    assert [(result.path, result.verified) for result in results] == [
        (str(photos[0]), False),
        (str(chance), False),
    ]
    assert results[1].inliers is not None and WEAK_INLIERS <= results[1].inliers < MIN_INLIERS


def test_the_region_under_a_mirrored_scaled_match_is_the_query_s_picture() -> None:
    """A query cut from a picture, halved and flipped: the match taking the query's (flipped)
    points onto the picture lays exactly that part under the query, covering all of it; moved
    100 px to the right, half of it lies off the picture."""
    rng = np.random.default_rng(7)
    picture = cv2.resize(rng.integers(0, 256, (40, 60, 3), np.uint8), (240, 160))
    left, top, width, height = 80, 40, 120, 80
    query = cv2.resize(picture[top : top + height, left : left + width], (width // 2, height // 2))
    query = query[:, ::-1]
    # Query pixel x is pixel 59 - x of the halved cut, at 2 (59 - x) + 0.5 in the cut: the
    # mirrored point -x goes to left + width - 1.5 + 2 (-x). Rows are not flipped.
    transform = np.array([[2.0, 0.0, left + width - 1.5], [0.0, 2.0, top + 0.5]])
    found = Match(np.arange(4), np.arange(4), transform, mirrored=True)
    region, cover = region_under(query.shape[:2], picture, found)
    assert cover == 1.0
    difference = np.abs(region.astype(float) - query.astype(float)).mean()
    other = np.abs(region.astype(float) - query[:, ::-1].astype(float)).mean()
    assert difference < 12 < other
    shifted = Match(found.first, found.second, transform + [[0, 0, 100], [0, 0, 0]], True)
    _, half = region_under(query.shape[:2], picture, shifted)
    assert 0.45 < half < 0.55
