"""A search's query and its hits compared frame to frame: mild copies of smooth pictures."""

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ris.embedding.pipeline import EmbeddingPipeline
from ris.index.milvus import MilvusIndex
from ris.search.image_search import ImageSearch
from ris.search.same_picture import SAME_PICTURE_DIFFERING, WEAK_INLIERS
from ris.search.verify import MAX_SIDE, _grey, local_features, match, query_views
from ris.search.whole_frames import frames_compared
from tests.imagefiles import flat_shapes, grey_squeezed_mirrored, write_image
from tests.placed import at, record

MAX_PIXELS = 50_000_000


def _mild_copy(picture: Image.Image) -> Image.Image:
    """Made grey, squeezed to another aspect ratio, flipped left to right and framed."""
    return ImageOps.expand(grey_squeezed_mirrored(picture), 24, fill=90)


def _grey_of(path: Path) -> np.ndarray:
    return _grey(str(path), MAX_PIXELS, MAX_SIDE)


def _sky(top: tuple[int, int, int], seed: int) -> Image.Image:
    """A tile of a plain sky: a colour fading to light grey downwards, grainy."""
    rows = np.linspace(0.0, 1.0, 400)[:, None, None]
    colour = np.array(top)[None, None, :] * (1 - rows) + 225 * rows
    noise = np.random.default_rng(seed).normal(0, 8, (400, 640, 3))
    return Image.fromarray(np.clip(colour + noise, 0, 255).astype(np.uint8))


def test_a_mild_copy_of_a_smooth_picture_is_one_picture_frame_to_frame(tmp_path: Path) -> None:
    """Flat shapes made grey, squeezed, flipped and framed agree with their original by too few
    features to align them; frame to frame they are one picture, and flat shapes of another
    seed are not."""
    for seed in (10, 33, 4):
        original = write_image(tmp_path / f"original-{seed}.png", flat_shapes(seed))
        other = write_image(tmp_path / f"other-{seed}.png", flat_shapes(seed + 1))
        copy = write_image(tmp_path / f"copy-{seed}.jpg", _mild_copy(flat_shapes(seed)), quality=40)
        (view,) = query_views(str(copy), MAX_PIXELS)
        found = match(view.features, local_features(str(original), MAX_PIXELS), stretch=True)
        assert found is None or found.inliers < WEAK_INLIERS
        assert frames_compared(view.grey, _grey_of(original)).same_picture
        assert not frames_compared(view.grey, _grey_of(other)).same_picture


def test_two_tiles_of_a_plain_sky_are_not_one_picture(tmp_path: Path) -> None:
    """Two grainy skies fading to light grey, of other colours: cell by cell they differ nowhere,
    but once the gradient is taken off nothing is left in common."""
    blue = write_image(tmp_path / "blue.png", _sky((70, 110, 190), 1))
    pink = write_image(tmp_path / "pink.png", _sky((200, 120, 150), 2))
    comparison = frames_compared(_grey_of(blue), _grey_of(pink))
    assert comparison.differing <= SAME_PICTURE_DIFFERING
    assert abs(comparison.structure) < 0.3 and not comparison.same_picture


def test_a_search_puts_the_hit_one_picture_frame_to_frame_first(
    pipeline: EmbeddingPipeline, index: MilvusIndex, photos: list[Path], tmp_path: Path
) -> None:
    """Nothing verifies the mild copy of a smooth picture; its original, placed third by
    vector, comes first unverified with RIS_VERIFY_FRAMES (and stays under a minimum score, as
    a verified hit would), and stays third without."""
    original = write_image(tmp_path / "original.png", flat_shapes(10))
    copy = write_image(tmp_path / "copy.jpg", _mild_copy(flat_shapes(10)), quality=40)
    near = pipeline([str(copy)]).vectors[0]
    placed = [(photos[0], 0.8), (photos[1], 0.75), (original, 0.6)]
    index.upsert([record(str(path), at(near, score)) for path, score in placed])
    index.flush()
    for frames, paths in ((True, [original, *photos[:2]]), (False, [*photos[:2], original])):
        search = ImageSearch(
            pipeline, index, 10, MAX_PIXELS, verify_weak=True, verify_frames=frames
        )
        results = search(str(copy), 3).results
        assert [r.path for r in results] == list(map(str, paths))
        assert not any(r.verified for r in results)
    kept = search(str(copy), 3, min_score=0.78).results
    assert [r.path for r in kept] == [str(photos[0])]
    search = ImageSearch(pipeline, index, 10, MAX_PIXELS, verify_frames=True)
    kept = search(str(copy), 3, min_score=0.78).results
    assert [r.path for r in kept] == [str(original), str(photos[0])]
