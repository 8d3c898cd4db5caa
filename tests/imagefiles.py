"""Generators of image files for tests: ordinary, edited and hostile ones."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps


def write_image(path: Path, image: Image.Image, **save_options: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **save_options)
    return path


def two_halves(width: int, height: int, left: tuple[int, int, int], right: tuple[int, int, int]):
    array = np.zeros((height, width, 3), np.uint8)
    array[:, : width // 2] = left
    array[:, width // 2 :] = right
    return Image.fromarray(array)


def textured(width: int = 120, height: int = 90, seed: int = 0) -> Image.Image:
    """A small noisy picture: many colours, no flat areas, like a photo."""
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 200, width, dtype=np.float32)[None, :, None]
    noise = rng.integers(0, 55, (height, width, 3))
    return Image.fromarray((base + noise).astype(np.uint8))


def stamp(pixels: np.ndarray) -> Image.Image:
    """An RGBA stamp: the given RGB pixels in the middle of a transparent square."""
    height, width, _ = pixels.shape
    rgba = np.zeros((height + 20, width + 20, 4), np.uint8)
    rgba[10:-10, 10:-10, :3] = pixels
    rgba[10:-10, 10:-10, 3] = 255
    return Image.fromarray(rgba)


def flat_shapes(seed: int, moved: int = 0) -> Image.Image:
    """Three ellipses of flat colours on a flat ground, 640 x 400, softened by a 3 px blur (a
    wallpaper of the ukui kind); the last ellipse `moved` to the right."""
    rng = np.random.default_rng(seed)
    width, height = 640, 400
    image = Image.new("RGB", (width, height), tuple(rng.integers(40, 200, 3).tolist()))
    draw = ImageDraw.Draw(image)
    for shape in range(3):
        (left, right), (top, bottom) = (
            sorted(rng.integers(0, width, 2)),
            sorted(rng.integers(0, height, 2)),
        )
        shift = moved if shape == 2 else 0
        draw.ellipse(
            (left + shift, top, right + 80 + shift, bottom + 80),
            fill=tuple(rng.integers(0, 255, 3).tolist()),
        )
    return image.filter(ImageFilter.GaussianBlur(3))


def grey_squeezed_mirrored(picture: Image.Image) -> Image.Image:
    """A mild copy of a 640 x 400 picture: made grey, squeezed to 420 x 400, flipped left to
    right. Of a smooth one, too few features agree with the original to align the two."""
    return ImageOps.mirror(ImageOps.grayscale(picture).resize((420, 400)))


def png_declaring_size(width: int, height: int) -> bytes:
    """A tiny, valid-looking PNG whose header claims width x height (a decompression bomb)."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    # IHDR starts at byte 8: length(4) type(4) width(4) height(4) ... crc(4).
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def truncated_jpeg(source: Path) -> bytes:
    data = source.read_bytes()
    return data[: len(data) // 3]


def edited_copies(source: Path, folder: Path) -> dict[str, Path]:
    """A crop, a resize and a low-quality JPEG re-encode of `source`."""
    image = Image.open(source)
    image.load()
    image = image.convert("RGB")
    width, height = image.size
    crop_box = (width // 10, height // 10, width - width // 10, height - height // 10)
    stem = source.stem
    return {
        "crop": write_image(folder / f"{stem}-crop.png", image.crop(crop_box)),
        "resize": write_image(
            folder / f"{stem}-resize.png", image.resize((width // 2, height // 2))
        ),
        "jpeg": write_image(folder / f"{stem}-q30.jpg", image, quality=30),
    }


def hard_copy(photo: Path, folder: Path) -> Path:
    """A third of the picture, shrunk, turned a little and saved at JPEG quality 30."""
    with Image.open(photo) as image:
        width, height = image.size
        crop = image.convert("RGB").crop((width // 4, height // 4, width * 3 // 4, height * 5 // 6))
    edited = crop.resize((crop.width * 2 // 3, crop.height * 2 // 3)).rotate(7, expand=True)
    path = folder / f"copy-of-{photo.stem}.jpg"
    edited.save(path, quality=30)
    return path


PAGE = (1200, 760)


def web_page(photo: Path, folder: Path, width: int = 480) -> tuple[Path, tuple[int, int, int, int]]:
    """A made-up social-network page at JPEG 60: a grey page, a white top bar and post, menu
    text, an avatar, and the photo `width` px wide in the post. Returns it and the photo's
    box."""
    page = Image.new("RGB", PAGE, (240, 242, 245))
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=18)
    draw.rectangle((0, 0, PAGE[0], 50), fill="white")
    draw.text((20, 14), "network            Search...", fill=(40, 40, 40), font=font)
    for line in range(8):
        draw.text((24, 90 + 34 * line), f"Menu item {line}", fill=(70, 70, 70), font=font)
    draw.rectangle((320, 80, 880, 740), fill="white")
    draw.ellipse((340, 96, 380, 136), fill=(90, 120, 200))
    draw.text((392, 106), "Jane Doe shared a photo - 2 hours ago", fill=(20, 20, 20), font=font)
    with Image.open(photo) as picture:
        pasted = picture.convert("RGB")
    pasted = pasted.resize((width, round(width * pasted.height / pasted.width)))
    box = (360, 160, 360 + pasted.width, 160 + pasted.height)
    page.paste(pasted, box[:2])
    draw.text((360, box[3] + 16), "Like    Comment    Share", fill=(90, 90, 90), font=font)
    path = folder / f"page-{photo.stem}.jpg"
    page.save(path, quality=60)
    return path, box
