"""Deterministic copy-detection edits: the same image and seed always give the same query.

Every edit takes a picture and a numpy Generator and returns the edited picture with the
parameters it drew, so a query's manifest entry says exactly what was done to it. JPEG
compression is not an image-to-image step here: it is the quality the query is saved with.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

Params = dict[str, object]
Edit = Callable[[Image.Image, np.random.Generator], tuple[Image.Image, Params]]

JPEG_QUALITY = (20, 50)  # inclusive, for the "jpeg" edit and the hard queries' last step
DEFAULT_QUALITY = 95  # a query without a JPEG edit is saved nearly losslessly
MAX_ROTATION = 10.0
HARD_AREA = (0.25, 0.50)
OVERLAY_WORDS = (
    "SALE",
    "© photo",
    "hello world",
    "2024",
    "www.example.com",
    "LOL",
    "sample",
    "#tbt",
    "not for resale",
    "Holiday!",
)


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    red, green, blue = (int(v) for v in rng.integers(0, 256, 3))
    return red, green, blue


def resize(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    scale = float(rng.uniform(0.3, 0.8))
    size = (max(16, round(image.width * scale)), max(16, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR), {"scale": round(scale, 3)}


def rotate(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    angle = float(rng.uniform(2.0, MAX_ROTATION)) * (1 if rng.random() < 0.5 else -1)
    rotated = image.rotate(angle, Image.Resampling.BICUBIC, expand=True, fillcolor=(0, 0, 0))
    return rotated, {"degrees": round(angle, 2)}


def hflip(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    return ImageOps.mirror(image), {}


def colour_jitter(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    brightness, contrast, saturation = (float(v) for v in rng.uniform(0.6, 1.4, 3))
    image = ImageEnhance.Brightness(image).enhance(brightness)
    image = ImageEnhance.Contrast(image).enhance(contrast)
    image = ImageEnhance.Color(image).enhance(saturation)
    factors = {"brightness": brightness, "contrast": contrast, "saturation": saturation}
    return image, {key: round(value, 3) for key, value in factors.items()}


def grayscale(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    return ImageOps.grayscale(image).convert("RGB"), {}


def blur(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    # Relative to the picture's size, so a large photo is as blurred as a small one looks.
    radius = float(rng.uniform(0.004, 0.01)) * max(image.size)
    return image.filter(ImageFilter.GaussianBlur(radius)), {"radius": round(radius, 2)}


def text_overlay(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    text = OVERLAY_WORDS[int(rng.integers(len(OVERLAY_WORDS)))]
    size = max(8, round(float(rng.uniform(0.07, 0.14)) * image.height))
    font = ImageFont.load_default(size=size)
    image = image.copy()
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = (int(v) for v in draw.textbbox((0, 0), text, font=font))
    x = int(rng.integers(0, max(1, image.width - (right - left))))
    y = int(rng.integers(0, max(1, image.height - (bottom - top))))
    fill = _colour(rng)
    outline = (0, 0, 0) if sum(fill) > 384 else (255, 255, 255)
    draw.text((x - left, y - top), text, font=font, fill=fill, stroke_width=1, stroke_fill=outline)
    return image, {"text": text, "size": size, "at": [x, y]}


def border(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    width = max(2, round(float(rng.uniform(0.04, 0.15)) * min(image.size)))
    colour = _colour(rng)
    return ImageOps.expand(image, border=width, fill=colour), {"width": width, "colour": colour}


IMAGE_EDITS: dict[str, Edit] = {
    "resize": resize,
    "rotate": rotate,
    "hflip": hflip,
    "colour_jitter": colour_jitter,
    "grayscale": grayscale,
    "blur": blur,
    "text_overlay": text_overlay,
    "border": border,
}
MILD_CHOICES = (*IMAGE_EDITS, "jpeg")


def jpeg_quality(rng: np.random.Generator) -> int:
    low, high = JPEG_QUALITY
    return int(rng.integers(low, high + 1))


def crop(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    """A crop keeping 25-50% of the area, aspect ratio up to 1.6 either way."""
    width, height = image.size
    area = float(rng.uniform(*HARD_AREA)) * width * height
    aspect = math.exp(float(rng.uniform(math.log(1 / 1.6), math.log(1.6))))
    crop_w = min(width, max(1, round(math.sqrt(area * aspect))))
    crop_h = min(height, max(1, round(area / crop_w)))
    crop_w = min(width, max(1, round(area / crop_h)))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    box = (left, top, left + crop_w, top + crop_h)
    kept = crop_w * crop_h / (width * height)
    return image.crop(box), {"box": list(box), "area": round(kept, 3)}


@dataclass
class Edited:
    """A query before saving: its picture, the JPEG quality to save it with, what was done."""

    image: Image.Image
    quality: int
    steps: list[Params] = field(default_factory=list)


def _apply(image: Image.Image, name: str, rng: np.random.Generator, steps: list[Params]):
    edit = crop if name == "crop" else IMAGE_EDITS[name]
    image, params = edit(image, rng)
    steps.append({"edit": name, **params})
    return image


def mild(image: Image.Image, rng: np.random.Generator) -> Edited:
    """One or two different edits drawn from MILD_CHOICES (JPEG, if drawn, is applied last)."""
    count = int(rng.integers(1, 3))
    names = [MILD_CHOICES[i] for i in rng.choice(len(MILD_CHOICES), size=count, replace=False)]
    steps: list[Params] = []
    image = image.convert("RGB")
    for name in names:
        if name != "jpeg":
            image = _apply(image, name, rng, steps)
    quality = DEFAULT_QUALITY
    if "jpeg" in names:
        quality = jpeg_quality(rng)
        steps.append({"edit": "jpeg", "quality": quality})
    return Edited(image, quality, steps)


def hard(image: Image.Image, rng: np.random.Generator) -> Edited:
    """A 25-50% crop, then two or three different image edits, then JPEG at quality 20-50."""
    steps: list[Params] = []
    image = _apply(image.convert("RGB"), "crop", rng, steps)
    names = list(IMAGE_EDITS)
    count = int(rng.integers(2, 4))
    for index in rng.choice(len(names), size=count, replace=False):
        image = _apply(image, names[int(index)], rng, steps)
    quality = jpeg_quality(rng)
    steps.append({"edit": "jpeg", "quality": quality})
    return Edited(image, quality, steps)


STRENGTHS: dict[str, Callable[[Image.Image, np.random.Generator], Edited]] = {
    "mild": mild,
    "hard": hard,
}
