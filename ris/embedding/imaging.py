"""Decoding one image file into the model's input: uint8 RGB, square, upright."""

from __future__ import annotations

import errno
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageChops, ImageOps, UnidentifiedImageError

from ris.embedding.jpeg_scans import keep_scans_for_eighth_scale
from ris.errors import ImageDecodeError

# Pixel-count limits are enforced by `load_image` itself, per call, not by Pillow's global.
Image.MAX_IMAGE_PIXELS = None

_BACKGROUND = (255, 255, 255)
# A pixel differs from the frame colour when a channel is further than this (JPEG noise is not).
FRAME_TOLERANCE = 24


def describe_os_error(error: OSError) -> str:
    if error.errno == errno.ENOENT:
        return "file not found"
    if error.errno == errno.EACCES:
        return "permission denied"
    if error.errno == errno.EISDIR:
        return "is a directory"
    if error.errno == errno.ELOOP:
        return "symlink loop"
    return error.strerror or str(error)


def to_rgb(image: Image.Image, background: tuple[int, int, int] = _BACKGROUND) -> Image.Image:
    """RGB with transparency composited on white; 16-bit and float images scaled to 8 bits."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(array * (255.0 / peak), 0, 255).astype(np.uint8), "L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, background)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB") if image.mode != "RGB" else image


def remove_frame(image: Image.Image) -> Image.Image:
    """Crop off a frame: a band of one colour about as wide on all four sides (a border added
    around a copy). Anything else, a white margin on one side or a plain sky, is left alone."""
    box = frame_box(image)
    return image if box is None else image.crop(box)


def frame_box(image: Image.Image) -> tuple[int, int, int, int] | None:
    """The box (left, top, right, bottom) inside the picture's frame, as `remove_frame` crops
    it; None when it has none."""
    width, height = image.size
    corners = np.array(
        [
            image.getpixel(xy)
            for xy in ((0, 0), (width - 1, 0), (0, height - 1), (width - 1, height - 1))
        ]
    )
    if np.ptp(corners, axis=0).max() > FRAME_TOLERANCE:
        return None
    # A grey picture's corners are numbers, a colour picture's tuples.
    colour = tuple(int(value) for value in np.atleast_1d(np.median(corners, axis=0)))
    background = Image.new(image.mode, image.size, colour if len(colour) > 1 else colour[0])
    difference = ImageChops.difference(image, background).convert("L")
    box = difference.point(lambda value: 255 if value > FRAME_TOLERANCE else 0).getbbox()
    if box is None:
        return None
    margins = (box[0], box[1], width - box[2], height - box[3])
    widest = max(margins)
    if min(margins) < 0.02 * min(width, height) or widest - min(margins) > max(3, 0.2 * widest):
        return None
    return box


def _decode_error(error: OSError) -> ImageDecodeError:
    """A file-system error (it has an errno) keeps its name; any other is a corrupt image."""
    if error.errno is not None:
        return ImageDecodeError(describe_os_error(error))
    return ImageDecodeError(f"corrupt image: {error}")


ImageSource = str | bytes
# Modes Image.reduce handles the way the full-size pixels would be converted afterwards.
_REDUCIBLE = ("RGB", "RGBA", "L", "LA")


def open_image(source: ImageSource, max_pixels: int) -> Image.Image:
    """Open a file path or the bytes of an upload, refusing non-images and oversized images
    before any pixel is decoded. The caller closes the image."""
    if isinstance(source, str) and os.path.isdir(source):
        raise ImageDecodeError("is a directory")
    try:
        image: Image.Image = Image.open(source if isinstance(source, str) else io.BytesIO(source))
    except UnidentifiedImageError:
        raise ImageDecodeError("not an image (unrecognised format)") from None
    except OSError as error:
        raise _decode_error(error) from None
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise ImageDecodeError(
            f"too many pixels: {width}x{height} exceeds the limit of {max_pixels}"
        )
    return image


@contextmanager
def decoding() -> Iterator[None]:
    """Turn whatever Pillow raises on a bad file into ImageDecodeError naming the reason."""
    try:
        yield
    except OSError as error:
        raise _decode_error(error) from None
    except (ValueError, SyntaxError, EOFError, MemoryError, Image.DecompressionBombError) as e:
        raise ImageDecodeError(f"corrupt image: {e}") from None


def draft(image: Image.Image, source: ImageSource, side: int) -> Image.Image:
    """Set up the cheapest decode still `side` pixels on both sides: a JPEG at 1/2, 1/4 or 1/8
    scale (a fraction of the DCT work), a progressive one at 1/8 from only the scans that reads."""
    width = image.width
    if image.format == "WEBP":
        return _decoded_by_libwebp(image, source, side)
    if image.format != "JPEG":
        return _reduced(image, side)
    image.draft("RGB", (side, side))
    eighth = width > 8 and image.width == -(-width // 8)
    if not (eighth and image.info.get("progressive")):
        return image
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    fewer_scans = keep_scans_for_eighth_scale(data, side)
    if fewer_scans is None:
        return image
    reduced = Image.open(io.BytesIO(fewer_scans))
    reduced.draft("RGB", (side, side))
    return reduced


def _decoded_by_libwebp(image: Image.Image, source: ImageSource, side: int) -> Image.Image:
    """A WebP decoded by OpenCV's libwebp call (half the time of Pillow's animation-aware
    decoder), shrunk like `_reduced` before its colours are reordered. The first frame, alpha
    kept, the EXIF orientation carried over."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.ndim != 3:
        return _reduced(image, side)  # let Pillow decode it, or name why it cannot
    factor = min(pixels.shape[:2]) // (2 * side)
    if factor >= 2:
        size = (pixels.shape[1] // factor, pixels.shape[0] // factor)
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    alpha = pixels.shape[2] == 4
    rgb = cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGBA if alpha else cv2.COLOR_BGR2RGB)
    decoded = Image.fromarray(rgb, "RGBA" if alpha else "RGB")
    decoded.info.update(image.info)
    return decoded


def _reduced(image: Image.Image, side: int) -> Image.Image:
    """Formats without reduced decoding (PNG, WebP...): decoded whole, then shrunk by a whole
    factor (a box filter) before anything else touches the pixels, as a JPEG draft would be."""
    factor = min(image.size) // (2 * side)
    if factor < 2 or image.mode not in _REDUCIBLE:
        return image
    image.load()
    return image.reduce(factor)


def upright_rgb(image: Image.Image, source: ImageSource, draft_side: int) -> Image.Image:
    """Decode (at the smallest scale still `draft_side` on both sides), turn upright by its EXIF
    orientation, composite transparency on white."""
    return to_rgb(ImageOps.exif_transpose(draft(image, source, draft_side)))


def load_image(
    source: ImageSource, size: int, max_pixels: int, frame_removal: bool = False
) -> np.ndarray:
    """Decode a path or bytes to a (size, size, 3) uint8 array, or raise ImageDecodeError."""
    with open_image(source, max_pixels) as image, decoding():
        # 3/4 of the model's input lets a typical 500x375 photo decode at half scale, at a cost
        # in detail the embedding does not notice.
        upright = upright_rgb(image, source, size * 3 // 4)
        if frame_removal:
            upright = remove_frame(upright)
        resized = upright.resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(resized, dtype=np.uint8)


def cut_out(
    source: ImageSource,
    max_pixels: int,
    decode_side: int,
    boxes: list[tuple[float, float, float, float]],
) -> list[bytes]:
    """Parts of the upright picture decoded at least `decode_side` on a side, each box given
    as shares (left, top, right, bottom) of its width and height, as PNG bytes, which the
    embedding pipeline and local features read as they read an upload; raises
    ImageDecodeError if the picture cannot be read."""
    with open_image(source, max_pixels) as image, decoding():
        upright = upright_rgb(image, source, decode_side)
        width, height = upright.size
        cuts = []
        for left, top, right, bottom in boxes:
            x0, y0 = round(left * width), round(top * height)
            part = upright.crop((x0, y0, round(right * width), round(bottom * height)))
            encoded = io.BytesIO()
            # Lossless and quick to write: the bytes are read once by each of two readers.
            part.save(encoded, "PNG", compress_level=1)
            cuts.append(encoded.getvalue())
    return cuts
