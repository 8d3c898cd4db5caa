"""Copy-detection edits and photo helpers: deterministic, within their documented ranges."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from ris.datasets import edits, photos
from tests.imagefiles import stamp, textured, two_halves


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


@pytest.mark.parametrize("name", sorted(edits.IMAGE_EDITS))
def test_each_edit_is_deterministic_for_a_seed(name: str) -> None:
    edit = edits.IMAGE_EDITS[name]
    first, params = edit(textured(), np.random.default_rng(7))
    again, params_again = edit(textured(), np.random.default_rng(7))
    assert first.mode == "RGB" and params == params_again
    assert np.array_equal(np.asarray(first), np.asarray(again))


def test_flip_mirrors_and_grayscale_drops_colour() -> None:
    image = two_halves(40, 20, (255, 0, 0), (0, 0, 255))
    flipped, _ = edits.hflip(image, np.random.default_rng(0))
    assert flipped.getpixel((2, 10)) == (0, 0, 255)
    grey, _ = edits.grayscale(image, np.random.default_rng(0))
    red, green, blue = np.asarray(grey).transpose(2, 0, 1)
    assert np.array_equal(red, green) and np.array_equal(green, blue)


def test_geometric_edits_stay_in_their_ranges() -> None:
    image = textured(200, 100)
    for seed in range(30):
        rng = np.random.default_rng(seed)
        small, params = edits.resize(image, rng)
        assert 0.3 <= params["scale"] <= 0.8 and small.width < image.width
        turned, params = edits.rotate(image, rng)
        assert 2 <= abs(params["degrees"]) <= edits.MAX_ROTATION
        assert turned.width >= image.width and turned.height >= image.height
        framed, params = edits.border(image, rng)
        assert framed.size == (
            image.width + 2 * params["width"],
            image.height + 2 * params["width"],
        )


@pytest.mark.parametrize("size", [(37, 211), (640, 480), (100, 100)])
def test_crop_keeps_a_quarter_to_a_half_of_the_area(size: tuple[int, int]) -> None:
    image = Image.new("RGB", size)
    for seed in range(50):
        cropped, params = edits.crop(image, np.random.default_rng(seed))
        kept = cropped.width * cropped.height / (size[0] * size[1])
        assert 0.23 <= kept <= 0.52, (seed, cropped.size)
        assert params["box"][2] <= size[0] and params["box"][3] <= size[1]


def test_mild_draws_one_or_two_different_edits_and_saves_jpeg_only_if_drawn() -> None:
    counts = set()
    for seed in range(60):
        edited = edits.mild(textured(), np.random.default_rng(seed))
        names = [step["edit"] for step in edited.steps]
        counts.add(len(names))
        assert len(set(names)) == len(names) and set(names) <= set(edits.MILD_CHOICES)
        if "jpeg" in names:
            assert names[-1] == "jpeg" and 20 <= edited.quality <= 50
        else:
            assert edited.quality == edits.DEFAULT_QUALITY
    assert counts == {1, 2}


def test_hard_is_a_crop_then_two_or_three_edits_then_jpeg() -> None:
    for seed in range(40):
        edited = edits.hard(textured(), np.random.default_rng(seed))
        names = [step["edit"] for step in edited.steps]
        assert names[0] == "crop" and names[-1] == "jpeg"
        assert 2 <= len(names[1:-1]) <= 3 and set(names[1:-1]) <= set(edits.IMAGE_EDITS)
        assert 20 <= edited.quality <= 50


@pytest.mark.parametrize("strength", sorted(edits.STRENGTHS))
def test_same_seed_gives_the_same_query_bytes(strength: str) -> None:
    make = edits.STRENGTHS[strength]
    first = make(textured(), np.random.default_rng([1, 2, 3]))
    again = make(textured(), np.random.default_rng([1, 2, 3]))
    other = make(textured(), np.random.default_rng([1, 2, 4]))
    assert first.steps == again.steps and first.quality == again.quality
    assert jpeg_bytes(first.image, first.quality) == jpeg_bytes(again.image, again.quality)
    assert other.steps != first.steps


def test_photo_stamps_are_told_from_drawn_ones() -> None:
    photo = stamp(np.asarray(textured(80, 60)))
    drawing = np.zeros((60, 80, 3), np.uint8)
    drawing[:, :40] = (250, 200, 0)
    drawing[20:40, 50:70] = (0, 90, 200)
    assert photos.looks_like_photo(photos.measure_stamp(photo))
    measures = photos.measure_stamp(stamp(drawing))
    assert measures.colours == 3 and measures.flat > 0.9
    assert not photos.looks_like_photo(measures)
    tiny = stamp(np.asarray(textured(20, 20)))
    assert not photos.looks_like_photo(photos.measure_stamp(tiny))


def test_on_white_crops_to_the_visible_part_with_a_margin() -> None:
    image = stamp(np.full((50, 100, 3), 30, np.uint8))
    result = photos.on_white(image, margin=0.1)
    assert result.mode == "RGB" and result.size == (120, 70)
    assert result.getpixel((0, 0)) == (255, 255, 255) and result.getpixel((60, 35)) == (30, 30, 30)


def test_fit_only_shrinks() -> None:
    assert photos.fit(Image.new("RGB", (2000, 1000)), 1024).size == (1024, 512)
    assert photos.fit(Image.new("RGBA", (300, 200)), 1024).size == (300, 200)


def test_tiles_are_square_disjoint_and_inside() -> None:
    boxes = photos.tile_boxes(2560, 1600, rows=7, min_side=200)
    side = boxes[0][2] - boxes[0][0]
    assert side == 228 and len(boxes) == 7 * 11
    covered = np.zeros((1600, 2560), np.uint8)
    for left, top, right, bottom in boxes:
        assert right - left == bottom - top == side
        assert 0 <= left and right <= 2560 and 0 <= top and bottom <= 1600
        covered[top:bottom, left:right] += 1
    assert covered.max() == 1
    assert photos.tile_boxes(1280, 1024, rows=7, min_side=200) == photos.tile_boxes(
        1280, 1024, 7, 200
    )
    assert len(photos.tile_boxes(1280, 1024, rows=7, min_side=200)) == 6 * 5


def test_uniform_tiles_are_not_kept() -> None:
    assert not photos.has_detail(Image.new("RGB", (64, 64), (90, 140, 200)))
    assert photos.has_detail(textured(64, 64))


def test_dhash_finds_near_copies_only() -> None:
    image = textured(160, 120)
    near = image.resize((80, 60))
    other = textured(160, 120).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    assert photos.hamming(photos.dhash(image), photos.dhash(near)) <= 3
    assert photos.hamming(photos.dhash(image), photos.dhash(other)) > 10
