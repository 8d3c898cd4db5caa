"""Decoding: every kind of file becomes an upright RGB square or a one-line reason."""

import os

import numpy as np
import pytest
from PIL import Image

from ris.embedding.imaging import load_image, remove_frame
from ris.errors import ImageDecodeError
from tests.imagefiles import png_declaring_size, two_halves, write_image

SIZE = 32
LIMIT = 10_000_000


def test_jpeg_becomes_square_uint8_rgb(tmp_path) -> None:
    path = write_image(tmp_path / "a.jpg", two_halves(400, 300, (255, 0, 0), (0, 0, 255)))
    array = load_image(str(path), SIZE, LIMIT)
    assert array.shape == (SIZE, SIZE, 3) and array.dtype == np.uint8
    assert array[SIZE // 2, 2, 0] > 200 and array[SIZE // 2, -3, 2] > 200


def test_exif_rotated_jpeg_is_indexed_upright(tmp_path) -> None:
    image = two_halves(80, 40, (255, 0, 0), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display.
    path = write_image(tmp_path / "rotated.jpg", image, exif=exif.tobytes())
    array = load_image(str(path), SIZE, LIMIT)
    # Displayed upright, the left (red) half is on top.
    assert array[2, SIZE // 2, 0] > 200 and array[2, SIZE // 2, 2] < 60
    assert array[-3, SIZE // 2, 2] > 200 and array[-3, SIZE // 2, 0] < 60


def test_transparency_is_composited_on_white(tmp_path) -> None:
    image = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    path = write_image(tmp_path / "clear.png", image)
    assert load_image(str(path), SIZE, LIMIT).min() == 255


def test_palette_with_transparency_is_composited_on_white(tmp_path) -> None:
    image = Image.new("P", (20, 20), 0)
    image.putpalette([0, 0, 0] * 256)
    path = write_image(tmp_path / "palette.png", image, transparency=0)
    assert load_image(str(path), SIZE, LIMIT).min() == 255


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path) -> None:
    array16 = np.full((10, 10), 32768, dtype=np.uint16)
    path = write_image(tmp_path / "deep.png", Image.fromarray(array16))
    value = int(load_image(str(path), SIZE, LIMIT)[0, 0, 0])
    assert 120 <= value <= 135


@pytest.mark.parametrize("mode", ["L", "CMYK", "1"])
def test_other_modes_become_rgb(tmp_path, mode: str) -> None:
    suffix = "jpg" if mode == "CMYK" else "png"
    path = write_image(tmp_path / f"m.{suffix}", Image.new(mode, (20, 10)))
    assert load_image(str(path), SIZE, LIMIT).shape == (SIZE, SIZE, 3)


def test_animated_gif_uses_first_frame(tmp_path) -> None:
    frames = [Image.new("RGB", (16, 16), colour) for colour in ((255, 0, 0), (0, 255, 0))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    array = load_image(str(path), SIZE, LIMIT)
    assert array[0, 0, 0] > 200 and array[0, 0, 1] < 60


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "not an image"),
        (b"hello, I am text", "not an image"),
        (os.urandom(4096), "not an image"),
    ],
)
def test_non_images_are_refused_with_a_reason(tmp_path, content: bytes, reason: str) -> None:
    path = tmp_path / "fake.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageDecodeError, match=reason):
        load_image(str(path), SIZE, LIMIT)


def test_truncated_jpeg_is_refused(tmp_path) -> None:
    whole = write_image(tmp_path / "whole.jpg", two_halves(400, 300, (9, 9, 9), (200, 1, 1)))
    path = tmp_path / "cut.jpg"
    path.write_bytes(whole.read_bytes()[:600])
    with pytest.raises(ImageDecodeError, match="corrupt image"):
        load_image(str(path), SIZE, LIMIT)


def test_decompression_bomb_is_refused_before_decoding(tmp_path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_declaring_size(30_000, 30_000))
    with pytest.raises(ImageDecodeError, match="too many pixels: 30000x30000"):
        load_image(str(path), SIZE, LIMIT)


def test_missing_file_and_directory_are_refused(tmp_path) -> None:
    with pytest.raises(ImageDecodeError, match="file not found"):
        load_image(str(tmp_path / "nope.jpg"), SIZE, LIMIT)
    (tmp_path / "dir.jpg").mkdir()
    with pytest.raises(ImageDecodeError, match="is a directory"):
        load_image(str(tmp_path / "dir.jpg"), SIZE, LIMIT)


def _noise(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_a_uniform_frame_is_cropped_off() -> None:
    photo = _noise(200, 150)
    framed = Image.new("RGB", (240, 190), (200, 40, 220))
    framed.paste(photo, (20, 20))
    assert remove_frame(framed).size == (200, 150)
    assert np.array_equal(np.asarray(remove_frame(framed)), np.asarray(photo))


@pytest.mark.parametrize(
    "place",
    [
        (0, 20),  # a margin on three sides only: the photo touches the left edge
        (5, 40),  # margins of very different widths: a white background, not a frame
    ],
)
def test_anything_but_a_frame_is_left_alone(place: tuple[int, int]) -> None:
    canvas = Image.new("RGB", (240, 190), (255, 255, 255))
    canvas.paste(_noise(200, 130), place)
    assert remove_frame(canvas) is canvas


def test_frame_removal_is_used_when_asked(tmp_path) -> None:
    framed = Image.new("RGB", (240, 240), (0, 200, 0))
    framed.paste(two_halves(200, 200, (255, 0, 0), (0, 0, 255)), (20, 20))
    path = write_image(tmp_path / "framed.png", framed)
    kept = load_image(str(path), SIZE, LIMIT)
    removed = load_image(str(path), SIZE, LIMIT, frame_removal=True)
    assert kept[0, 0, 1] > 150  # the green frame is still there
    assert removed[0, 0, 0] > 200 and removed[0, -1, 2] > 200  # red left, blue right, no green
