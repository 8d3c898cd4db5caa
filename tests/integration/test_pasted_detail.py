"""Photos shown small in pages of one template, a few cells at the features' side, compared read
larger: pages showing different photos stay apart, and a page's copies (smaller and re-encoded,
or showing its photo brightened) still join it."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from ris.duplicates import verdicts
from ris.duplicates.groups import FEATURE_COUNT, FEATURE_FEW, FEATURE_SIDE
from ris.duplicates.pasted_detail import small_boxes
from ris.files.remote import FetchOptions, Remote
from ris.search.same_picture import region_compared, reversed_match
from ris.search.verify import Match, Pictures
from tests.imagefiles import web_page

# Photos whose pages the template alone joined: their boxes are found, a few cells each.
SHOWN = (
    "imagenet_12_741",
    "imagenet_13_471",
    "imagenet_15_99",
    "imagenet_16_251",
    "imagenet_17_22",
    "astronaut",
    "brick",
    "camera",
    "grass",
    "gravel",
)
PHOTO_WIDTH = 200  # px of the 1,200 px page: 43 px at the features' 256


@pytest.fixture(scope="module")
def pages(photos: list[Path], tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A page for each photo, then a copy of the first page three quarters its size at JPEG
    50, then the second photo's page made again with the photo brightened."""
    folder = tmp_path_factory.mktemp("pasted-detail")
    named = {photo.stem: photo for photo in photos}
    made = [web_page(named[name], folder, PHOTO_WIDTH)[0] for name in SHOWN]
    smaller = folder / "smaller-copy.jpg"
    with Image.open(made[0]) as page:
        page.resize((page.width * 3 // 4, page.height * 3 // 4)).save(smaller, quality=50)
    brighter = folder / "brighter"
    brighter.mkdir()
    with Image.open(named[SHOWN[1]]) as photo:
        ImageEnhance.Brightness(photo.convert("RGB")).enhance(1.2).save(brighter / "photo.png")
    return [*made, smaller, web_page(brighter / "photo.png", brighter, PHOTO_WIDTH)[0]]


def _groups(pages: list[Path], pictures: Pictures) -> list[list[int]]:
    pairs = {pair: 0.9 for pair in itertools.combinations(range(len(pages)), 2)}
    found = verdicts.accepted_pairs(pairs, dict(enumerate(map(str, pages))), pictures)
    return sorted(sorted(group) for group in found.joined.sets())


def test_pages_showing_different_small_photos_stay_apart_and_their_copies_join(
    pages: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    pictures = Pictures(Remote(FetchOptions()), 10**8, FEATURE_SIDE, FEATURE_COUNT, FEATURE_FEW)
    boxes = [pictures.pasted_boxes(str(page)) for page in pages[: len(SHOWN)]]
    assert all(found and small_boxes(found) == found for found in boxes), boxes
    copies = len(SHOWN), len(SHOWN) + 1
    assert _groups(pages, pictures) == [[0, copies[0]], [1, copies[1]]]
    # Compared at the features' side only, the template joined most of the pages.
    monkeypatch.setattr(verdicts, "with_pasted_detail", lambda comparison, *_: comparison)
    joined = _groups(pages, pictures)
    assert max(map(len, joined)) >= len(SHOWN) // 2


def _grey(photo: Path, width: int, mirror: bool = False) -> np.ndarray:
    with Image.open(photo) as image:
        grey = image.convert("L")
    grey = grey.resize((width, round(width * grey.height / grey.width)))
    return np.asarray(ImageOps.mirror(grey) if mirror else grey)


def test_a_region_read_larger_is_compared_where_the_match_puts_it(photos: list[Path]) -> None:
    """The second picture is the first mirrored at three quarters of the larger size: a match
    at the features' side (256 px: both 256 wide) takes a point (x, y) of the first, flipped to
    (-x, y), onto (256 - x, y). Any box of the first is then one picture with the second read
    larger (and the other way round), and not with another photo mirrored alike."""
    first, other = photos[0], photos[5]
    found = Match(np.zeros(0, int), np.zeros(0, int), np.array([[1.0, 0, 256], [0, 1, 0]]), True)
    scales = (2.0, 1.5)  # 512 and 384 px wide against 256
    for box in ((40, 30, 100, 90), (150, 100, 230, 160)):
        same = region_compared(
            _grey(first, 512), _grey(first, 384, mirror=True), found, scales, box
        )
        assert same is not None and same.same_picture_both_ways, same
        assert same.correlation > 0.9
        apart = region_compared(
            _grey(first, 512), _grey(other, 384, mirror=True), found, scales, box
        )
        assert apart is not None and not apart.same_picture_both_ways
        # The other way round: a box of the second found in the first.
        back = region_compared(
            _grey(first, 384, mirror=True),
            _grey(first, 512),
            reversed_match(found),
            scales[::-1],
            box,
        )
        assert back is not None and back.same_picture_both_ways, back
    # A box under two cells a side even read larger is not compared.
    tiny = (0, 0, 15, 15)
    assert region_compared(_grey(first, 512), _grey(first, 384, True), found, scales, tiny) is None
