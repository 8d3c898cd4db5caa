"""The centre of a query: the middle of the upright picture, or a one-line reason."""

import io

import pytest
from PIL import Image

from ris.errors import ImageDecodeError
from ris.search.query_centre import query_centre
from tests.imagefiles import two_halves, write_image

LIMIT = 10_000_000


def _opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_the_centre_is_the_middle_of_the_picture(tmp_path) -> None:
    """A white page with a red middle: the centre is 70% of each side, red inside a white rim."""
    page = Image.new("RGB", (1000, 600), (255, 255, 255))
    page.paste((255, 0, 0), (250, 150, 750, 450))
    page_bytes = _png(page)
    centre = _opened(query_centre(page_bytes, LIMIT))
    assert centre.size == (700, 420) and centre.format == "PNG"
    assert centre.getpixel((350, 210)) == (255, 0, 0)
    assert centre.getpixel((10, 10)) == (255, 255, 255)
    assert query_centre(page_bytes, LIMIT) == query_centre(page_bytes, LIMIT)


def test_the_centre_of_an_exif_rotated_photo_is_taken_upright(tmp_path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display.
    image = two_halves(800, 400, (255, 0, 0), (0, 0, 255))
    path = write_image(tmp_path / "rotated.jpg", image, exif=exif.tobytes())
    centre = _opened(query_centre(str(path), LIMIT))
    assert centre.size == (280, 560)
    # Displayed upright, the left (red) half is on top.
    top, bottom = centre.getpixel((140, 20)), centre.getpixel((140, 540))
    assert top[0] > 200 and top[2] < 60 and bottom[2] > 200 and bottom[0] < 60


def test_an_unreadable_query_has_no_centre(tmp_path) -> None:
    with pytest.raises(ImageDecodeError, match="not an image"):
        query_centre(b"no picture here", LIMIT)
    with pytest.raises(ImageDecodeError, match="too many pixels"):
        query_centre(_png(Image.new("RGB", (400, 400))), 1000)


def _png(image: Image.Image) -> bytes:
    encoded = io.BytesIO()
    image.save(encoded, "PNG")
    return encoded.getvalue()
