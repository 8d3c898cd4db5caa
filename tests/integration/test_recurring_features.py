"""Duplicate groups and features that recur across many pictures, on real photos: different
photos pasted into one template are no copies of each other, many copies of one photo stay one
group, and the pixel comparison that tells the two apart."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from ris.duplicates.groups import FEATURE_COUNT, FEATURE_SIDE
from ris.duplicates.recurring import (
    aligned_in_place,
    distinctive_inliers,
    needs_same_picture,
    own_points,
    recurring_features,
)
from ris.duplicates.verdicts import accepted_pairs
from ris.files.remote import FetchOptions, Remote
from ris.search.same_picture import SAME_PICTURE_DIFFERING, compared
from ris.search.verify import MIN_INLIERS, Match, Pictures, match
from tests.imagefiles import web_page

# Below the score that joins pairs unchecked: every pair goes through verification.
SCORE = 0.9


@pytest.fixture
def pictures() -> Pictures:
    return Pictures(Remote(FetchOptions()), 10**8, FEATURE_SIDE, FEATURE_COUNT)


def photo(photos: list[Path], name: str) -> Image.Image:
    with Image.open(next(path for path in photos if path.name == name)) as image:
        return image.convert("RGB")


def templated(
    photos: list[Path], folder: Path, slot: tuple[int, int, int, int] = (100, 250, 400, 300)
) -> list[Path]:
    """Ten different photos, each pasted into the same `slot` (left, top, width, height; by
    default a quarter) of one screenshot-like 600 x 800 frame, as social-network screenshots
    and memes are."""
    frame = photo(photos, "motorcycle_left.png").resize((600, 800))
    left, top, width, height = slot
    made = []
    for number, path in enumerate(sorted(photos)[:10]):
        with Image.open(path) as image:
            pasted = image.convert("RGB").resize((width, height))
        screenshot = frame.copy()
        screenshot.paste(pasted, (left, top))
        made.append(folder / f"screenshot-{number}.jpg")
        screenshot.save(made[-1], quality=85)
    return made


def copies(photos: list[Path], folder: Path) -> list[Path]:
    """Seven copies of one photo: re-encoded, resized, brightened, flattened, cropped, mirrored."""
    original = photo(photos, "astronaut.png")
    width, height = original.size
    edits = {
        "original.png": original,
        "half.jpg": original.resize((width // 2, height // 2)),
        "low-quality.jpg": original,
        "brighter.jpg": ImageEnhance.Brightness(original).enhance(1.25),
        "flatter.jpg": ImageEnhance.Contrast(original).enhance(0.8),
        "cropped.jpg": original.crop((width // 20, height // 20, width * 19 // 20, height)),
        "mirrored.jpg": ImageOps.mirror(original),
    }
    made = []
    for name, image in edits.items():
        made.append(folder / name)
        image.save(made[-1], **({"quality": 40} if name == "low-quality.jpg" else {}))
    return made


def all_pairs(paths: list[Path]) -> tuple[dict[tuple[int, int], float], dict[int, str]]:
    return (
        {pair: SCORE for pair in itertools.combinations(range(len(paths)), 2)},
        {number: str(path) for number, path in enumerate(paths)},
    )


def matches_of(paths: list[Path], pictures: Pictures) -> dict[tuple[int, int], Match]:
    features = [pictures.features(str(path)) for path in paths]
    found = {}
    for first, second in itertools.combinations(range(len(paths)), 2):
        result = match(features[first], features[second])  # type: ignore[arg-type]
        if result is not None and result.inliers >= MIN_INLIERS:
            found[(first, second)] = result
    return found


def test_photos_pasted_into_one_template_are_no_copies_of_each_other(
    photos: list[Path], pictures: Pictures, tmp_path: Path
) -> None:
    screenshots = templated(photos, tmp_path)
    # The frame's features alone verify every pair, and they are the recurring ones.
    verified = matches_of(screenshots, pictures)
    assert len(verified) == 45
    recurring = recurring_features(verified)
    assert all(needs_same_picture(pair, found, recurring) for pair, found in verified.items())
    pairs, paths = all_pairs(screenshots)
    verdicts = accepted_pairs(pairs, paths, pictures)
    assert (verdicts.joined.sets(), verdicts.checked, verdicts.accepted) == ([], 45, 0)
    assert verdicts.compared == 45


def test_many_copies_of_one_photo_stay_one_group(
    photos: list[Path], pictures: Pictures, tmp_path: Path
) -> None:
    made = copies(photos, tmp_path)
    verified = matches_of(made, pictures)
    recurring = recurring_features(verified)
    # More copies than RECURRING_PARTNERS + 1: their shared features recur, so the pairs are
    # kept by comparing pixels.
    assert sum(needs_same_picture(pair, found, recurring) for pair, found in verified.items()) > 10
    pairs, paths = all_pairs(made)
    verdicts = accepted_pairs(pairs, paths, pictures)
    assert [sorted(group) for group in verdicts.joined.sets()] == [list(range(len(made)))]
    assert verdicts.accepted >= 15 and verdicts.compared > 10


def test_the_pixel_comparison_sees_a_pasted_photo_and_not_an_edit(
    photos: list[Path], pictures: Pictures, tmp_path: Path
) -> None:
    screenshots = templated(photos, tmp_path)
    made = copies(photos, tmp_path)
    for group, (first, second), expected in (  # (pictures, the pair, the same picture?)
        (screenshots, (0, 1), False),
        (made, (0, 4), True),  # contrast
        (made, (0, 6), True),  # mirrored
        (made, (5, 6), True),  # cropped against mirrored
        (made, (1, 5), True),  # half size against a crop
    ):
        found = matches_of(group, pictures)[(first, second)]
        share = compared(
            pictures.grey(str(group[first])),  # type: ignore[arg-type]
            pictures.grey(str(group[second])),  # type: ignore[arg-type]
            found,
        ).differing
        assert (share <= SAME_PICTURE_DIFFERING) == expected, share
    grey = pictures.grey(str(made[0]))
    assert grey is not None
    identity = Match(np.zeros(0, int), np.zeros(0, int), np.eye(2, 3), False)
    assert compared(grey, grey, identity).differing == 0.0


def test_two_photos_pasted_into_one_page_are_no_copies_though_few_pages_share_it(
    photos: list[Path], pictures: Pictures, tmp_path: Path
) -> None:
    """Three pages of one made-up template, each with another photo: too few for the page's
    features to recur, but the pairs align in place, so they must be one picture too."""
    made = [web_page(path, tmp_path)[0] for path in sorted(photos)[:3]]
    verified = matches_of(made, pictures)
    assert len(verified) == 3
    recurring = recurring_features(verified)
    for pair, found in verified.items():
        assert distinctive_inliers(pair, found, recurring) == found.inliers  # none recurs
        assert aligned_in_place(found) and needs_same_picture(pair, found, recurring)
    pairs, paths = all_pairs(made)
    verdicts = accepted_pairs(pairs, paths, pictures)
    assert (verdicts.joined.sets(), verdicts.accepted, verdicts.compared) == ([], 0, 3)


def test_copies_aligned_in_place_pass_as_one_picture_and_crops_and_mirrors_are_not_aligned(
    photos: list[Path], pictures: Pictures, tmp_path: Path
) -> None:
    """Features are found at one size (FEATURE_SIDE), so a resized copy aligns in place too."""
    made = copies(photos, tmp_path)  # original, half size, re-encoded, brighter, ...
    verified = matches_of(made, pictures)
    assert all(aligned_in_place(verified[(0, copy)]) for copy in (1, 2, 3))
    assert not aligned_in_place(verified[(0, 5)])  # cropped: shifted
    assert not aligned_in_place(verified[(0, 6)])  # mirrored
    pairs, paths = all_pairs(made[:4])
    verdicts = accepted_pairs(pairs, paths, pictures)
    assert [sorted(group) for group in verdicts.joined.sets()] == [[0, 1, 2, 3]]
    assert verdicts.compared == 6 and verdicts.accepted == 6


def test_photos_pasted_into_one_page_cropped_apart_are_no_copies_but_the_photo_is(
    photos: list[Path], pictures: Pictures, tmp_path: Path
) -> None:
    """Three pages of one made-up template, each with another photo and cropped differently
    (as screenshots are): the pairs verify by the page alone and do not align in place, but
    the page lies outside the photo found pasted in each, so its features count as
    recurring. The first page's photo still joins the page."""
    made = []
    for number, path in enumerate(sorted(photos)[:3]):
        page, _ = web_page(path, tmp_path)
        with Image.open(page) as image:
            image.crop((0, 0, image.width - 120 * number, image.height)).save(page, quality=90)
        made.append(page)
    verified = matches_of(made, pictures)
    assert len(verified) == 3
    assert not any(aligned_in_place(found) for found in verified.values())
    recurring = recurring_features(verified)
    assert not any(needs_same_picture(pair, found, recurring) for pair, found in verified.items())
    pairs, paths = all_pairs([*made, sorted(photos)[0]])
    verdicts = accepted_pairs(pairs, paths, pictures)
    assert [sorted(group) for group in verdicts.joined.sets()] == [[0, 3]]
    assert (verdicts.framed, verdicts.compared) == (3, 3)


def test_two_pages_of_one_template_are_no_copies_among_a_crowd_of_its_other_pages(
    photos: list[Path], pictures: Pictures, tmp_path: Path
) -> None:
    """Ten pages of one template, each with another photo and cropped apart. Only the first
    two are candidates: they verify by the page alone, do not align in place, and nothing is
    found pasted in a page that is a photo itself, so alone they are taken as copies. The
    other eight are near them by vector (their crowd): matched with those, the page's
    features recur, and the pair is compared pixel for pixel and refused."""
    pages = templated(photos, tmp_path)
    for number, page in enumerate(pages[1:], start=1):
        with Image.open(page) as image:
            # At least 7 feature pixels apart from the first page: not aligned in place.
            image.crop((15 + 5 * number, 0, image.width, image.height)).save(page, quality=85)
    pairs = {(0, 1): SCORE}
    paths = {number: str(page) for number, page in enumerate(pages)}
    alone = accepted_pairs(pairs, paths, pictures)
    assert (alone.joined.sets(), alone.compared, alone.framed) == ([[0, 1]], 0, 0)
    crowds = {0: list(range(2, 10)), 1: list(range(2, 10))}
    crowded = accepted_pairs(pairs, paths, pictures, crowds=crowds)
    assert (crowded.joined.sets(), crowded.checked, crowded.compared) == ([], 1, 1)


def test_pages_differing_in_a_small_photo_differ_where_their_own_features_are(
    photos: list[Path], pictures: Pictures, tmp_path: Path
) -> None:
    """Pages of one template whose photos cover 6% of the page pass as one picture over the
    whole page, but not over the cells holding the first page's own features (neither
    recurring nor agreeing with the second page's: its photo's). A copy still passes with all
    of its features taken as its own."""
    pages = templated(photos, tmp_path, slot=(200, 350, 200, 150))[:7]
    verified = matches_of(pages, pictures)
    recurring = recurring_features(verified)
    first, second = (pictures.grey(str(page)) for page in pages[:2])
    features = pictures.features(str(pages[0]))
    assert first is not None and second is not None and features is not None
    content = own_points(features, recurring[0], verified[(0, 1)])
    assert 0 < len(content) < len(features.points) / 2
    assert compared(first, second, verified[(0, 1)]).differing <= SAME_PICTURE_DIFFERING
    assert compared(first, second, verified[(0, 1)], content).differing > SAME_PICTURE_DIFFERING
    made = copies(photos, tmp_path)
    original, flatter = pictures.grey(str(made[0])), pictures.grey(str(made[4]))
    features = pictures.features(str(made[0]))
    assert original is not None and flatter is not None and features is not None
    found = matches_of(made, pictures)[(0, 4)]
    assert compared(original, flatter, found, features.points).differing <= SAME_PICTURE_DIFFERING


def ramp(width: int, height: int, rising: bool) -> Image.Image:
    """Grey levels 20-230 from left to right (or right to left): smooth, a few features."""
    levels = np.linspace(20, 230, width, dtype=np.float32)[None, :].repeat(height, axis=0)
    return Image.fromarray(np.ascontiguousarray(levels[:, :: 1 if rising else -1]).astype(np.uint8))


def test_two_pages_of_one_template_differing_only_in_their_smooth_pasted_pictures_stay_apart(
    tmp_path: Path,
) -> None:
    """The pasted pictures are under 8% of the page, and too smooth to hold features of their
    own: their cells, found as pasted pictures, must be one picture too. A copy of the page
    (half size, JPEG 50) still joins it."""
    pages = []
    for rising in (True, False):
        folder = tmp_path / f"rising-{rising}"
        folder.mkdir()
        ramp(320, 240, rising).convert("RGB").save(folder / "ramp.png")
        pages.append(web_page(folder / "ramp.png", folder, width=300)[0])
    copy = tmp_path / "copy.jpg"
    with Image.open(pages[0]) as page:
        page.resize((page.width // 2, page.height // 2)).save(copy, quality=50)
    pictures = Pictures(Remote(FetchOptions()), 10**8, FEATURE_SIDE, FEATURE_COUNT)
    boxes = [pictures.pasted_boxes(str(page)) for page in pages]
    assert all(found and len(found) == 1 for found in boxes), boxes
    paths = {0: str(pages[0]), 1: str(pages[1]), 2: str(copy)}
    apart = accepted_pairs({(0, 1): SCORE}, paths, pictures)
    assert (apart.compared, apart.accepted, apart.joined.sets()) == (1, 0, [])
    joined = accepted_pairs({(0, 2): SCORE}, paths, pictures)
    assert joined.joined.sets() == [[0, 2]]


def faded(path: Path, opacity: float = 0.3) -> Path:
    """The picture laid at `opacity` over white (AugLy's opacity edit), beside it."""
    with Image.open(path) as image:
        picture = image.convert("RGB")
    made = path.with_name(f"faded-{path.name}")
    Image.blend(Image.new("RGB", picture.size, "white"), picture, opacity).save(made, quality=90)
    return made


def test_a_faded_page_is_no_copy_of_another_photo_s_page_but_is_of_its_own(
    photos: list[Path], pictures: Pictures, tmp_path: Path
) -> None:
    """Pages of one template hold their photos on under a third of the page. Laid over white,
    a page's grey levels span a third of their range, and the line that maps another page's
    onto them is nearly flat where the photos differ: it differs from anything by little.
    Mapped the other way round, the other photo shows."""
    pages = [web_page(path, tmp_path)[0] for path in sorted(photos)[:2]]
    made = [faded(pages[0]), pages[1], pages[0]]  # the faded page is the first of its pairs
    verified = matches_of(made, pictures)
    greys = [pictures.grey(str(path)) for path in made]
    other = compared(greys[0], greys[1], verified[(0, 1)])  # type: ignore[arg-type]
    assert other.same_picture and not other.same_picture_both_ways, other
    own = compared(greys[0], greys[2], verified[(0, 2)])  # type: ignore[arg-type]
    assert own.same_picture_both_ways, own
    pairs, paths = all_pairs(made)
    verdicts = accepted_pairs(pairs, paths, pictures)
    assert [sorted(group) for group in verdicts.joined.sets()] == [[0, 2]]
