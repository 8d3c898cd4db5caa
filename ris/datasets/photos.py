"""Pure image helpers: is a stamp a photo, composite on white, fingerprints, wallpaper tiles."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

WHITE = (255, 255, 255)


@dataclass(frozen=True)
class StampMeasures:
    """What tells a photographed stamp from a drawn one, over its opaque pixels."""

    opaque: int  # pixels with alpha >= 128
    colours: int  # distinct RGB values among them
    flat: float  # share of horizontal neighbour pairs whose grey level differs by < 1


# Drawings are large areas of one colour: many equal neighbours and few colours. Photos have
# noise and texture everywhere. Thresholds chosen by looking at all of Tux Paint's PNG stamps.
MIN_OPAQUE = 2000
MIN_COLOURS = 1000
MAX_FLAT = 0.35


def measure_stamp(image: Image.Image) -> StampMeasures:
    rgba = np.asarray(image.convert("RGBA"))
    opaque = rgba[..., 3] >= 128
    pixels = rgba[..., :3][opaque].astype(np.uint32)
    colours = len(np.unique(pixels[:, 0] << 16 | pixels[:, 1] << 8 | pixels[:, 2]))
    grey = rgba[..., :3].astype(np.float32).mean(axis=-1)
    pairs = opaque[:, 1:] & opaque[:, :-1]
    steps = np.abs(np.diff(grey, axis=1))[pairs]
    flat = float((steps < 1).mean()) if steps.size else 1.0
    return StampMeasures(int(opaque.sum()), colours, flat)


def looks_like_photo(measures: StampMeasures) -> bool:
    return (
        measures.opaque >= MIN_OPAQUE
        and measures.colours >= MIN_COLOURS
        and measures.flat < MAX_FLAT
    )


def on_white(image: Image.Image, margin: float = 0.08) -> Image.Image:
    """The visible part of an image with transparency, cropped with a margin, on white."""
    rgba = image.convert("RGBA")
    box = rgba.getchannel("A").point(lambda a: 255 if a >= 16 else 0).getbbox()
    if box is None:
        return Image.new("RGB", rgba.size, WHITE)
    rgba = rgba.crop(box)
    pad = round(max(rgba.size) * margin)
    canvas = Image.new("RGBA", (rgba.width + 2 * pad, rgba.height + 2 * pad), WHITE + (255,))
    canvas.alpha_composite(rgba, (pad, pad))
    return canvas.convert("RGB")


def fit(image: Image.Image, max_side: int) -> Image.Image:
    """RGB, shrunk (never enlarged) so the longer side is at most max_side."""
    image = image.convert("RGB")
    scale = max_side / max(image.size)
    if scale < 1:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    return image


def dhash(image: Image.Image) -> int:
    """64-bit difference hash: near-identical pictures differ in a few bits."""
    grey = np.asarray(image.convert("L").resize((9, 8), Image.Resampling.LANCZOS), np.int16)
    bits = (grey[:, 1:] > grey[:, :-1]).flatten()
    return int(sum(1 << i for i, bit in enumerate(bits) if bit))


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def tile_boxes(width: int, height: int, rows: int = 5, min_side: int = 256) -> list[tuple]:
    """Non-overlapping square tiles covering the middle of a large picture, row by row."""
    side = max(min_side, min(width, height) // rows)
    across, down = width // side, height // side
    left0, top0 = (width - across * side) // 2, (height - down * side) // 2
    return [
        (left0 + c * side, top0 + r * side, left0 + (c + 1) * side, top0 + (r + 1) * side)
        for r in range(down)
        for c in range(across)
    ]


# A tile of clear sky, fog or a blurred background is no plausible photo on its own.
MIN_TILE_CONTRAST = 18.0


def has_detail(tile: Image.Image) -> bool:
    grey = np.asarray(tile.convert("L"), np.float32)
    return float(grey.std()) >= MIN_TILE_CONTRAST and 16 <= float(grey.mean()) <= 240
