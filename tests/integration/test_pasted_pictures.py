"""Pictures pasted inside a query (a screenshot's photo): found, cut out, and searched."""

import io
from pathlib import Path
from typing import cast

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from ris.embedding.pipeline import EmbeddingPipeline
from ris.index.milvus import MilvusIndex
from ris.search.image_search import ImageSearch
from ris.search.pasted_pictures import pasted_boxes, pasted_pictures
from ris.search.same_picture import WEAK_INLIERS
from ris.search.verify import MIN_INLIERS, local_features, match, query_views
from tests.imagefiles import PAGE, flat_shapes, web_page, write_image
from tests.integration.test_verify import MAX_PIXELS
from tests.placed import CountedSearches, at, record


def _letterboxed(photo: Path, folder: Path) -> tuple[Path, tuple[int, int, int, int]]:
    """The photo 600 px wide on a black 600 x 600 frame, as a video still would be."""
    with Image.open(photo) as picture:
        pasted = picture.convert("RGB")
    pasted = pasted.resize((600, round(600 * pasted.height / pasted.width)))
    frame = Image.new("RGB", (600, 600))
    top = (600 - pasted.height) // 2
    frame.paste(pasted, (0, top))
    path = folder / f"letterboxed-{photo.stem}.png"
    frame.save(path)
    return path, (0, top, 600, top + pasted.height)


def _near(found: tuple[float, ...], box: tuple[int, int, int, int], size: tuple[int, int]) -> bool:
    """The found box (shares of the sides) is the pixel box give or take 2% of a side."""
    width, height = size
    expected = (box[0] / width, box[1] / height, box[2] / width, box[3] / height)
    return bool(np.allclose(found, expected, atol=0.02))


def test_the_photo_of_a_web_page_is_its_first_pasted_picture(
    photos: list[Path], tmp_path: Path
) -> None:
    for photo in photos[:6]:
        page, box = web_page(photo, tmp_path)
        with Image.open(page) as image:
            found = pasted_boxes(np.asarray(image.convert("RGB")))
        assert found and _near(found[0], box, PAGE), photo.name
        first = pasted_pictures(str(page), MAX_PIXELS)[0]
        with Image.open(io.BytesIO(first)) as cut:
            assert abs(cut.width - 480) <= 0.02 * PAGE[0] and cut.format == "PNG"


def test_a_letterboxed_photo_is_cut_out_of_its_bars(photos: list[Path], tmp_path: Path) -> None:
    wide = next(photo for photo in photos if photo.name == "chelsea.png")
    framed, box = _letterboxed(wide, tmp_path)
    with Image.open(framed) as image:
        found = pasted_boxes(np.asarray(image))
    assert found and _near(found[0], box, (600, 600))


def _boxed_drawing(folder: Path, size: tuple[int, int]) -> tuple[Path, tuple[int, int, int, int]]:
    """A dark red triangle drawn on white, `size`, fitted into a black 480 x 360 box (bars on
    two facing sides, as a screenshot fits a picture); the drawing's box in it."""
    drawing = Image.new("RGB", size, "white")
    width, height = size
    ImageDraw.Draw(drawing).polygon(
        [(width * 0.2, height * 0.8), (width * 0.5, height * 0.2), (width * 0.8, height * 0.8)],
        fill=(140, 20, 30),
    )
    boxed = Image.new("RGB", (480, 360))
    left, top = (480 - width) // 2, (360 - height) // 2
    boxed.paste(drawing, (left, top))
    path = folder / f"boxed-{width}x{height}.png"
    boxed.save(path)
    return path, (left, top, left + width, top + height)


def test_a_drawing_on_white_boxed_between_bars_in_a_white_post_is_found(tmp_path: Path) -> None:
    """Its white is the post's: only the bars tell where the picture is, left and right or
    above and below."""
    for size in ((240, 360), (480, 200)):
        boxed, (left, top, right, bottom) = _boxed_drawing(tmp_path, size)
        page, (x, y, _, _) = web_page(boxed, tmp_path)
        with Image.open(page) as image:
            found = pasted_boxes(np.asarray(image.convert("RGB")))
        assert found and _near(found[0], (x + left, y + top, x + right, y + bottom), PAGE), size


def _padded_wallpaper(seed: int, folder: Path) -> tuple[Path, tuple[int, int, int, int]]:
    """A flat wallpaper rotated 4 degrees (black corners) on a purple border, as AugLy pads a
    picture; the rotated wallpaper's box in it."""
    wallpaper = flat_shapes(seed).rotate(4, Image.Resampling.BICUBIC, expand=True)
    padded = Image.new("RGB", (1000, 700), (150, 90, 220))
    padded.paste(wallpaper, (150, 100))
    path = write_image(folder / f"padded-{seed}.png", padded)
    return path, (150, 100, 150 + wallpaper.width, 100 + wallpaper.height)


def test_a_flat_picture_padded_by_a_border_is_found_inside_it(tmp_path: Path) -> None:
    """The wallpaper's own flat fills are frequent colours too, so as background they break it
    into pieces: only the fill around the edges, taken alone (as searches ask), leaves it
    whole. A drawing on white stays unboxed either way."""
    for seed in range(3):
        padded, box = _padded_wallpaper(seed, tmp_path)
        with Image.open(padded) as image:
            rgb = np.asarray(image.convert("RGB"))
        found = pasted_boxes(rgb, padded=True)
        assert len(found) == 1 and _near(found[0], box, (1000, 700)), seed
        assert pasted_boxes(rgb) == [], seed
    drawing, _ = _boxed_drawing(tmp_path, (480, 360))
    with Image.open(drawing) as image:
        assert pasted_boxes(np.asarray(image.convert("RGB")), padded=True) == []


def test_a_padded_flat_picture_s_cut_is_nearer_its_original_than_the_page(
    pipeline: EmbeddingPipeline, tmp_path: Path
) -> None:
    """What the search of pasted pictures gains: the cut describes the wallpaper."""
    padded, _ = _padded_wallpaper(0, tmp_path)
    original = write_image(tmp_path / "original.png", flat_shapes(0))
    (cut,) = pasted_pictures(str(padded), MAX_PIXELS, padded=True)
    whole, pasted, own = pipeline([str(padded), cut, str(original)]).vectors
    assert float(pasted @ own) > max(0.8, float(whole @ own) + 0.05)


def test_ordinary_photos_rarely_have_a_pasted_picture(photos: list[Path]) -> None:
    """Of the 36 sample photos, three have a corner of flat fill that stands out as a
    rectangle (a cell on plain ground, a cat's dark corner, a rocket's sky), and none more."""
    with_regions = set()
    for photo in photos:
        with Image.open(photo) as image:
            if pasted_boxes(np.asarray(image.convert("RGB"))):
                with_regions.add(photo.name)
    assert len(photos) == 36 and len(with_regions) <= 3
    assert "grass.png" not in with_regions  # texture everywhere: no background at all


def _pasted_search(
    pipeline: EmbeddingPipeline, index: CountedSearches, pasted: bool
) -> ImageSearch:
    counted = cast(MilvusIndex, index)
    return ImageSearch(pipeline, counted, verify_top=2, max_pixels=MAX_PIXELS, verify_pasted=pasted)


def test_a_search_finds_the_original_of_a_web_page_s_photo(
    pipeline: EmbeddingPipeline, index: MilvusIndex, photos: list[Path], tmp_path: Path
) -> None:
    """The whole page's nearest (other photos) verify nothing; the pasted photo's nearest is
    its original, verified, which then comes first. Off, it is not found."""
    page, _ = web_page(photos[0], tmp_path)
    whole = pipeline([str(page)]).vectors[0]
    cut = pipeline([pasted_pictures(str(page), MAX_PIXELS)[0]]).vectors[0]
    assert float(whole @ cut) < 0.87
    placed = [(photos[1], at(whole, 0.89)), (photos[2], at(whole, 0.88)), (photos[0], cut)]
    index.upsert([record(str(path), vector) for path, vector in placed])
    index.flush()

    counted = CountedSearches(index)
    results = _pasted_search(pipeline, counted, True)(str(page), 2).results
    assert results[0].path == str(photos[0]) and results[0].verified and results[0].rank == 1
    assert results[0].inliers is not None and results[0].inliers >= MIN_INLIERS
    assert results[1].path == str(photos[1]) and not results[1].verified
    assert counted.searches == 2  # the whole page, then its photo

    off = _pasted_search(pipeline, CountedSearches(index), False)
    assert [r.path for r in off(str(page), 2).results] == [str(photos[1]), str(photos[2])]


def test_tiny_pictures_give_boxes_inside_them() -> None:
    """Flat fill around a few textured pixels, down to pictures a few pixels wide."""
    rng = np.random.default_rng(0)
    with_boxes = 0
    for side in range(1, 40):
        picture = np.full((side, side, 3), 255, np.uint8)
        middle = slice(side // 4, max(side // 4 + 1, 3 * side // 4))
        picture[middle, middle] = rng.integers(0, 256, picture[middle, middle].shape)
        boxes = pasted_boxes(picture)
        with_boxes += bool(boxes)
        for left, top, right, bottom in boxes:
            assert 0 <= left < right <= 1 and 0 <= top < bottom <= 1, side
    assert with_boxes >= 30  # the textured middle, from 5 px on


def test_a_pasted_picture_s_nearest_comes_first_when_nothing_verifies(
    pipeline: EmbeddingPipeline, index: MilvusIndex, imagenet: list[Path], tmp_path: Path
) -> None:
    """A page whose pasted picture is a photo blurred, squeezed and flipped: no feature agrees
    with its original, so nothing verifies, but the pasted picture's nearest (the original) is
    far nearer to it than the page's nearest are to the page, so it comes first, unverified,
    with RIS_PASTED_NEAREST; without, the page's nearest stay first."""
    original = imagenet[5]
    with Image.open(original) as photo:
        blurred = photo.convert("RGB").filter(ImageFilter.GaussianBlur(16))
    copy = write_image(tmp_path / "copy.png", ImageOps.mirror(blurred.resize((420, 400))))
    page, _ = web_page(copy, tmp_path)
    (pasted,) = pasted_pictures(str(page), MAX_PIXELS)
    pasted_view = query_views(pasted, MAX_PIXELS)[0]
    found = match(pasted_view.features, local_features(str(original), MAX_PIXELS))
    assert found is None or found.inliers < WEAK_INLIERS
    whole, cut = pipeline([str(page), pasted]).vectors
    placed = [
        (imagenet[1], at(whole, 0.89)),
        (imagenet[2], at(whole, 0.88)),
        (original, at(cut, 0.95)),
    ]
    index.upsert([record(str(path), vector) for path, vector in placed])
    index.flush()
    for nearest, first in ((True, [original, imagenet[1]]), (False, imagenet[1:3])):
        search = ImageSearch(
            pipeline, index, 10, MAX_PIXELS, verify_pasted=True, pasted_nearest=nearest
        )
        results = search(str(page), 2).results
        assert [r.path for r in results] == list(map(str, first))
        assert not any(r.verified for r in results)
