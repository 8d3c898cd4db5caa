"""Spatial verification on real photos, and the search that uses it on a real collection."""

from pathlib import Path
from typing import cast

import numpy as np
from PIL import Image

from ris.duplicates.groups import FEATURE_COUNT, FEATURE_FEW, FEATURE_SIDE
from ris.embedding.pipeline import EmbeddingPipeline
from ris.files.identity import image_id
from ris.files.remote import Remote
from ris.index.base import ImageRecord
from ris.index.milvus import MilvusIndex
from ris.search.feature_cache import FeatureCache, KeptFeatures
from ris.search.image_search import ImageSearch
from ris.search.keep_features import keep_features
from ris.search.query_centre import query_centre
from ris.search.same_picture import WEAK_INLIERS
from ris.search.verify import (
    MAX_FEATURES,
    MAX_SIDE,
    MIN_INLIERS,
    SMALL_QUERY_SIDE,
    LocalFeatures,
    Match,
    Pictures,
    inliers,
    local_features,
    match,
    query_views,
)
from ris.search.verify import mirrored as mirrored_features
from tests.imagefiles import flat_shapes, hard_copy, write_image
from tests.placed import CountedSearches, at, record

MAX_PIXELS = 10**8


def test_a_cropped_copy_matches_its_original_and_nothing_else(
    photos: list[Path], tmp_path: Path
) -> None:
    copy = local_features(str(hard_copy(photos[0], tmp_path)), MAX_PIXELS)
    assert inliers(copy, local_features(str(photos[0]), MAX_PIXELS)) >= MIN_INLIERS
    for other in photos[1:6]:
        assert inliers(copy, local_features(str(other), MAX_PIXELS)) < MIN_INLIERS


def _small_thumbnail(photo: Path, folder: Path) -> Path:
    """The photo's middle quarter, 64 px on its longer side, at JPEG quality 30."""
    with Image.open(photo) as image:
        width, height = image.size
        crop = image.convert("RGB").crop((width // 4, height // 4, width * 3 // 4, height * 3 // 4))
    crop.thumbnail((64, 64))
    small = folder / f"{photo.stem}.jpg"
    crop.save(small, quality=30)
    return small


def test_a_small_query_is_also_looked_at_enlarged_and_verifies_more_small_copies(
    photos: list[Path], tmp_path: Path
) -> None:
    """Each photo's middle quarter, 64 px on its longer side at JPEG quality 30 (a thumbnail of
    a crop): looked at as it is and enlarged, the query verifies more of them than as it is
    alone, and none with another photo."""
    found_as_is = found_either_way = 0
    for number, photo in enumerate(photos):
        small = _small_thumbnail(photo, tmp_path)
        original = local_features(str(photo), MAX_PIXELS)
        as_it_is, enlarged = (view.features for view in query_views(str(small), MAX_PIXELS))
        assert np.array_equal(as_it_is.points, local_features(str(small), MAX_PIXELS).points)
        assert 64 < enlarged.points.max() < SMALL_QUERY_SIDE
        found_as_is += inliers(as_it_is, original) >= MIN_INLIERS
        found_either_way += max(inliers(as_it_is, original), inliers(enlarged, original)) >= (
            MIN_INLIERS
        )
        for other in photos[number + 1 : number + 4]:
            hit = local_features(str(other), MAX_PIXELS)
            assert max(inliers(as_it_is, hit), inliers(enlarged, hit)) < MIN_INLIERS
    assert found_either_way > found_as_is


def test_a_large_query_is_looked_at_as_a_hit_is(photos: list[Path]) -> None:
    (view,) = query_views(str(photos[0]), MAX_PIXELS)
    query, hit = view.features, local_features(str(photos[0]), MAX_PIXELS)
    assert np.array_equal(query.points, hit.points)
    assert np.array_equal(query.descriptors, hit.descriptors)


def test_pairs_that_cannot_reach_the_inliers_asked_for_stop_before_ransac(
    photos: list[Path], tmp_path: Path
) -> None:
    """`at_least`, as duplicate groups ask it, changes no verdict: the copy's match is the
    same, and some pairs of different pictures, which RANSAC fitted to a few chance
    agreements, stop before it."""

    def features(path: Path) -> LocalFeatures:
        return local_features(str(path), MAX_PIXELS, FEATURE_SIDE, FEATURE_COUNT)

    def verified(found: Match | None) -> bool:
        return found is not None and found.inliers >= MIN_INLIERS

    copy = features(hard_copy(photos[0], tmp_path))
    full, asked = match(copy, features(photos[0])), match(copy, features(photos[0]), MIN_INLIERS)
    assert full is not None and asked is not None and verified(full)
    assert (asked.inliers, asked.mirrored) == (full.inliers, full.mirrored)
    np.testing.assert_allclose(asked.transform, full.transform)
    stopped = 0
    for other in map(features, photos[1:12]):
        full, asked = match(copy, other), match(copy, other, MIN_INLIERS)
        assert not verified(full) and not verified(asked)
        stopped += full is not None and asked is None
    assert stopped > 0


def test_a_mirrored_copy_matches_its_original_as_the_flipped_pixels_would(
    photos: list[Path], tmp_path: Path
) -> None:
    with Image.open(hard_copy(photos[0], tmp_path)) as copy:
        copy.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(tmp_path / "mirrored.jpg")
    mirrored = local_features(str(tmp_path / "mirrored.jpg"), MAX_PIXELS)
    original = local_features(str(photos[0]), MAX_PIXELS)
    assert inliers(mirrored, original) >= MIN_INLIERS
    for other in photos[1:6]:
        assert inliers(mirrored, local_features(str(other), MAX_PIXELS)) < MIN_INLIERS


def test_a_mirrored_copy_is_matched_flipped_even_when_it_agrees_a_little_as_it_is(
    photos: list[Path], tmp_path: Path
) -> None:
    """The astronaut's mirror agrees with her by chance under a half turn (11-13 features):
    the flipped match, hundreds strong, is the one kept, with its transform."""
    original = next(path for path in photos if path.name == "astronaut.png")
    with Image.open(original) as image:
        image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(tmp_path / "mirrored.png")
    found = match(
        local_features(str(original), MAX_PIXELS),
        local_features(str(tmp_path / "mirrored.png"), MAX_PIXELS),
    )
    assert found is not None and found.mirrored and found.inliers > 100
    assert np.allclose(found.transform[:, :2], np.eye(2), atol=0.05)


def test_mirrored_descriptors_are_those_sift_finds_on_the_flipped_pixels(
    photos: list[Path], tmp_path: Path
) -> None:
    with Image.open(photos[0]) as photo:
        photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(tmp_path / "flipped.png")
        width = min(photo.size[0], 320)
    mirror = mirrored_features(local_features(str(photos[0]), MAX_PIXELS))
    flipped = local_features(str(tmp_path / "flipped.png"), MAX_PIXELS)
    # The same keypoint sits at x in one and at width - 1 - x in the other.
    positions = mirror.points + np.float32([width - 1, 0])
    distances = np.linalg.norm(positions[:, None] - flipped.points[None], axis=2)
    same = distances.min(axis=1) < 0.5
    nearest = distances.argmin(axis=1)[same]
    assert same.sum() >= 100
    difference = np.linalg.norm(mirror.descriptors[same] - flipped.descriptors[nearest], axis=1)
    assert np.median(difference / np.linalg.norm(flipped.descriptors[nearest], axis=1)) < 0.05


def test_an_image_without_texture_has_no_features_and_matches_nothing(
    photos: list[Path], tmp_path: Path
) -> None:
    flat = tmp_path / "flat.png"
    Image.new("RGB", (200, 150), (120, 160, 200)).save(flat)
    features = local_features(str(flat), MAX_PIXELS)
    assert len(features.points) == 0
    assert inliers(features, local_features(str(photos[0]), MAX_PIXELS)) == 0


def test_verification_puts_the_original_of_a_crop_first(
    pipeline: EmbeddingPipeline, index: MilvusIndex, photos: list[Path], tmp_path: Path
) -> None:
    """Other photos sit nearer the copy's vector than its original does; verification finds it."""
    copy = hard_copy(photos[0], tmp_path)
    near = pipeline([str(copy)]).vectors[0]
    placed = [(photos[1], 0.8), (photos[2], 0.75), (photos[3], 0.7), (photos[0], 0.6)]
    index.upsert([record(str(path), at(near, score)) for path, score in placed])
    index.flush()

    unverified = ImageSearch(pipeline, index, verify_top=0, max_pixels=MAX_PIXELS)
    assert [r.path for r in unverified(str(copy), 3).results] == [str(p) for p, _ in placed[:3]]

    search = ImageSearch(pipeline, index, verify_top=10, max_pixels=MAX_PIXELS)(str(copy), 3)
    first = search.results[0]
    assert first.path == str(photos[0]) and first.rank == 1
    assert first.verified and first.inliers is not None and first.inliers >= MIN_INLIERS
    assert [r.path for r in search.results[1:]] == [str(photos[1]), str(photos[2])]
    assert all(r.inliers is not None and not r.verified for r in search.results[1:])
    assert search.timings_ms["verify"] > 0


def test_a_search_finds_the_original_of_a_small_query_through_its_enlarged_view(
    pipeline: EmbeddingPipeline, index: MilvusIndex, photos: list[Path], tmp_path: Path
) -> None:
    """A thumbnail of grass.png's middle quarter does not verify its original as it is; the
    search checks it enlarged too, and puts the original first though two photos sit nearer."""
    original = next(photo for photo in photos if photo.name == "grass.png")
    small = _small_thumbnail(original, tmp_path)
    as_it_is = query_views(str(small), MAX_PIXELS)[0].features
    assert inliers(as_it_is, local_features(str(original), MAX_PIXELS)) < MIN_INLIERS
    near = pipeline([str(small)]).vectors[0]
    others = [photo for photo in photos if photo != original][:2]
    placed = [(others[0], 0.8), (others[1], 0.75), (original, 0.6)]
    index.upsert([record(str(path), at(near, score)) for path, score in placed])
    index.flush()
    search = ImageSearch(pipeline, index, verify_top=10, max_pixels=MAX_PIXELS)(str(small), 3)
    first = search.results[0]
    assert first.path == str(original) and first.verified
    assert first.inliers is not None and first.inliers >= MIN_INLIERS


def test_a_hit_whose_file_is_gone_keeps_its_place(
    pipeline: EmbeddingPipeline, index: MilvusIndex, photos: list[Path], tmp_path: Path
) -> None:
    copy = hard_copy(photos[0], tmp_path)
    near = pipeline([str(copy)]).vectors[0]
    gone = str(tmp_path / "moved-away.jpg")
    index.upsert([record(gone, at(near, 0.8)), record(str(photos[1]), at(near, 0.7))])
    index.flush()
    results = ImageSearch(pipeline, index, verify_top=5, max_pixels=MAX_PIXELS)(str(copy), 2)
    assert [(r.path, r.inliers is None) for r in results.results] == [
        (gone, True),
        (str(photos[1]), False),
    ]


def test_the_query_s_own_picture_needs_no_verification(
    pipeline: EmbeddingPipeline, index: MilvusIndex, photos: list[Path]
) -> None:
    vector = pipeline([str(photos[0])]).vectors[0]
    index.upsert([record(str(photos[0]), vector), record(str(photos[1]), at(vector, 0.5))])
    index.flush()
    search = ImageSearch(pipeline, index, verify_top=10, max_pixels=MAX_PIXELS)(str(photos[0]), 2)
    assert [r.inliers for r in search.results] == [None, None]
    assert search.results[0].path == str(photos[0]) and search.results[0].score > 0.99


def test_hits_beyond_verify_top_are_checked_once_their_features_are_kept(
    pipeline: EmbeddingPipeline, index: MilvusIndex, photos: list[Path], tmp_path: Path
) -> None:
    """The original sits 4th; only 2 hits are read. It is verified once `keep_features` has
    kept every picture's features, and not for a row whose file changed since."""
    copy = hard_copy(photos[0], tmp_path)
    near = pipeline([str(copy)]).vectors[0]
    placed = [(photos[1], 0.8), (photos[2], 0.75), (photos[3], 0.7), (photos[0], 0.6)]
    gone = str(tmp_path / "moved-away.jpg")
    index.upsert([record(str(path), at(near, score)) for path, score in placed])
    index.upsert([record(gone, at(near, 0.1))])
    index.flush()
    cache = FeatureCache(tmp_path / "features", 10**9, MAX_SIDE, MAX_FEATURES)
    search = ImageSearch(
        pipeline, index, verify_top=2, max_pixels=MAX_PIXELS, cache=cache, verify_kept_top=3
    )
    before = search(str(copy), 5).results
    assert [r.path for r in before[:4]] == [str(path) for path, _ in placed]
    assert [r.inliers is not None for r in before] == [True, True, False, False, False]
    assert not any(r.verified for r in before)

    kept = KeptFeatures(Pictures(Remote(), MAX_PIXELS), cache)
    report = keep_features(index, kept)
    assert (report.rows, report.already_kept, report.extracted, report.unreadable) == (5, 2, 3, 1)
    assert report.cache_bytes > 0
    again = keep_features(index, kept)
    assert (again.already_kept, again.extracted, again.unreadable) == (4, 1, 1)

    after = search(str(copy), 5).results
    assert after[0].path == str(photos[0]) and after[0].verified
    assert [r.path for r in after[1:4]] == [str(path) for path, _ in placed[:3]]
    assert all(r.inliers is not None for r in after[:4])
    # Asked for 2, the search asks the index for the 3 after them only now, and finds it.
    two = search(str(copy), 2).results
    assert [(r.path, r.verified) for r in two] == [(str(photos[0]), True), (str(photos[1]), False)]
    # Read from the cache, the features match as the extracted ones do.
    assert after[0].inliers == inliers(
        local_features(str(copy), MAX_PIXELS), local_features(str(photos[0]), MAX_PIXELS)
    )

    # Indexed again with another size: what was kept no longer applies to it.
    index.upsert([ImageRecord(image_id(str(photos[0])), str(photos[0]), at(near, 0.6), 2, 1)])
    index.flush()
    assert not any(r.verified for r in search(str(copy), 5).results)
    # Without a cache, only `verify_top` hits are checked.
    uncached = ImageSearch(pipeline, index, verify_top=2, max_pixels=MAX_PIXELS, verify_kept_top=3)
    assert [r.inliers is not None for r in uncached(str(copy), 5).results] == [True, True] + [
        False
    ] * 3
    cache.close()


def _pasted_small(photo: Path, background: Path, folder: Path) -> Path:
    """The photo at 40% of a screenshot-like page's width, in its middle, on another photo."""
    with Image.open(background) as page, Image.open(photo) as picture:
        canvas = page.convert("RGB").resize((900, 1200))
        pasted = picture.convert("RGB")
        pasted = pasted.resize((360, round(360 * pasted.height / pasted.width)))
        canvas.paste(pasted, ((900 - 360) // 2, (1200 - pasted.height) // 2))
    path = folder / f"pasted-{photo.stem}.jpg"
    canvas.save(path, quality=80)
    return path


def _centre_search(pipeline: EmbeddingPipeline, index: CountedSearches) -> ImageSearch:
    """Checking 2 hits, then the query's centre's."""
    counted = cast(MilvusIndex, index)
    return ImageSearch(pipeline, counted, verify_top=2, max_pixels=MAX_PIXELS, verify_centre=True)


def test_the_centre_of_a_query_finds_the_picture_pasted_into_it(
    pipeline: EmbeddingPipeline, index: MilvusIndex, photos: list[Path], tmp_path: Path
) -> None:
    """The whole query's nearest (other photos) verify nothing; its centre's nearest is the
    pasted picture's original, verified, which then comes first. Off, it is not found."""
    query = _pasted_small(photos[0], photos[5], tmp_path)
    whole = pipeline([str(query)]).vectors[0]
    centre = pipeline([query_centre(str(query), MAX_PIXELS)]).vectors[0]
    assert float(whole @ centre) < 0.87
    placed = [(photos[1], at(whole, 0.89)), (photos[2], at(whole, 0.88)), (photos[0], centre)]
    index.upsert([record(str(path), vector) for path, vector in placed])
    index.flush()

    counted = CountedSearches(index)
    results = _centre_search(pipeline, counted)(str(query), 2).results
    assert results[0].path == str(photos[0]) and results[0].verified and results[0].rank == 1
    assert results[0].inliers is not None and results[0].inliers >= MIN_INLIERS
    assert results[1].path == str(photos[1]) and not results[1].verified
    assert counted.searches == 2  # the whole query, then its centre

    off = ImageSearch(pipeline, index, verify_top=2, max_pixels=MAX_PIXELS)
    assert [r.path for r in off(str(query), 2).results] == [str(photos[1]), str(photos[2])]


def test_a_query_that_verifies_as_a_whole_searches_no_centre(
    pipeline: EmbeddingPipeline, index: MilvusIndex, photos: list[Path], tmp_path: Path
) -> None:
    copy = hard_copy(photos[0], tmp_path)
    near = pipeline([str(copy)]).vectors[0]
    index.upsert([record(str(photos[1]), at(near, 0.8)), record(str(photos[0]), at(near, 0.7))])
    index.flush()
    counted = CountedSearches(index)
    assert _centre_search(pipeline, counted)(str(copy), 2).results[0].path == str(photos[0])
    assert counted.searches == 1


def _squeezed(photo: Path, folder: Path) -> Path:
    """The photo at half its height and its full width, at JPEG quality 80."""
    with Image.open(photo) as image:
        size = (image.width, image.height // 2)
        squeezed = image.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    return write_image(folder / f"{photo.stem}-squeezed.jpg", squeezed, quality=80)


def test_a_squeezed_copy_verifies_by_a_stretched_transform_where_asked(
    photos: list[Path], tmp_path: Path
) -> None:
    """Squeezed to half its height, a photo agrees with its original under no similarity; a
    stretched transform found for it is a squeeze, and matches no other photo."""
    settings = (MAX_PIXELS, FEATURE_SIDE, FEATURE_COUNT, FEATURE_FEW)
    originals = [local_features(str(photo), *settings) for photo in photos]
    copies = [local_features(str(_squeezed(photo, tmp_path)), *settings) for photo in photos]

    def verified(found: Match | None) -> bool:
        return found is not None and found.inliers >= MIN_INLIERS

    similar = stretched = 0
    for copy, original in zip(copies, originals, strict=True):
        if verified(match(copy, original, MIN_INLIERS)):
            similar += 1
            continue
        found = match(copy, original, MIN_INLIERS, stretch=True)
        if verified(found):
            assert found is not None
            stretched += 1
            # The copy's rows are half as far apart as the original's: the transform taking
            # its points onto the original's doubles one direction against the other.
            smaller, larger = np.linalg.svd(found.transform[:, :2], compute_uv=False)[::-1]
            assert 0.4 < smaller / larger < 0.6
    # 7 of the 36 verify under a similarity, 18 more stretched.
    assert similar < len(photos) / 4 and stretched >= 10
    for number, copy in enumerate(copies):
        for other in originals[number + 1 : number + 6]:
            assert not verified(match(copy, other, MIN_INLIERS, stretch=True))


def _weakly_matched(hit: Image.Image, seed: int, folder: Path) -> tuple[Path, Path, int]:
    """The hit and a copy of flat_shapes(`seed`) (cropped, resized, JPEG 30) as files, and the
    features agreeing between them: 4-9, too few to verify by."""
    path = write_image(folder / "hit.png", hit)
    copy = write_image(
        folder / "copy.jpg",
        flat_shapes(seed).crop((53, 40, 640, 360)).resize((420, 240)),
        quality=30,
    )
    (view,) = query_views(str(copy), MAX_PIXELS)
    found = match(view.features, local_features(str(path), MAX_PIXELS))
    assert found is not None and WEAK_INLIERS <= found.inliers < MIN_INLIERS
    return path, copy, found.inliers


def test_a_smooth_picture_s_original_verifies_pixel_for_pixel_when_few_features_agree(
    pipeline: EmbeddingPipeline, index: MilvusIndex, photos: list[Path], tmp_path: Path
) -> None:
    """Flat shapes on a flat ground and a copy: 5 features agree, too few to verify; aligned
    by them, the two are one picture pixel for pixel, so the search puts the original first,
    over two photos nearer to the query. Without RIS_VERIFY_WEAK, nothing verifies."""
    original, copy, agreeing = _weakly_matched(flat_shapes(10), 10, tmp_path)
    near = pipeline([str(copy)]).vectors[0]
    placed = [(photos[0], 0.8), (photos[1], 0.75), (original, 0.6)]
    index.upsert([record(str(path), at(near, score)) for path, score in placed])
    index.flush()
    for weak, first in ((True, (str(original), agreeing, True)), (False, None)):
        search = ImageSearch(pipeline, index, 10, MAX_PIXELS, verify_weak=weak)(str(copy), 3)
        verified = [(r.path, r.inliers, r.verified) for r in search.results if r.verified]
        assert verified == ([first] if first else [])
    assert search.results[0].path == str(photos[0])


def test_a_smooth_picture_s_variant_does_not_verify_pixel_for_pixel(
    pipeline: EmbeddingPipeline, index: MilvusIndex, tmp_path: Path
) -> None:
    """Another picture of flat shapes with one shape moved 40 px: 4 features agree with the
    copy, but aligned by them the two differ in over a quarter of their cells."""
    variant, copy, agreeing = _weakly_matched(flat_shapes(4, moved=40), 4, tmp_path)
    index.upsert([record(str(variant), at(pipeline([str(copy)]).vectors[0], 0.8))])
    index.flush()
    search = ImageSearch(pipeline, index, 10, MAX_PIXELS, verify_weak=True)(str(copy), 1)
    assert [(r.path, r.inliers, r.verified) for r in search.results] == [
        (str(variant), agreeing, False)
    ]
