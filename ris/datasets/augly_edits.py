"""Copy-detection edits from AugLy, the generator of the DISC21 benchmark, drawn from a seed.

A second generator beside `edits.py`, written by other people with other ideas of a copy: emoji
and text overlays in AugLy's own fonts, pictures pasted into web and phone screenshots, padding,
pixelation, noise, stripes, skew, aspect changes. Every parameter is drawn from the given numpy
Generator (AugLy's own defaults and randomness are never used), so the same picture and seed
always give the same query. AugLy is tooling: the `datasets` extra installs it.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache, partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFont

from ris.datasets.edits import Edit, Edited, Params

# A hard copy keeps this share of the picture's area: "a quarter of the picture or less".
HARD_AREA = (0.10, 0.25)
# A mild copy keeps at least this much when it is cropped at all.
MILD_AREA = (0.60, 0.90)
JPEG_QUALITY = (15, 45)
DEFAULT_QUALITY = 95
EMOJI_GROUPS = ("animals_and_nature", "food_and_drink", "objects", "smileys", "travel_and_places")


def _augly() -> Any:
    import augly.image as imaugs  # tooling: only dataset builds need it

    return imaugs


def _assets() -> Path:
    import augly

    return Path(augly.__file__).parent / "assets"


@cache
def _emojis() -> list[Path]:
    folder = _assets() / "twemojis"
    return sorted(path for group in EMOJI_GROUPS for path in (folder / group).glob("*.png"))


@cache
def _fonts() -> list[tuple[Path, int]]:
    """(font file, how many characters its glyph list has) for AugLy's fonts."""
    fonts = []
    for path in sorted((_assets() / "fonts").glob("*.ttf")):
        characters = path.with_suffix(".pkl")
        if characters.exists():
            with characters.open("rb") as file:
                fonts.append((path, len(pickle.load(file))))
    return fonts


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    red, green, blue = (int(v) for v in rng.integers(0, 256, 3))
    return red, green, blue


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return round(float(rng.uniform(low, high)), 3)


def crop(image: Image.Image, rng: np.random.Generator, area: tuple[float, float]) -> Edited:
    kept = _uniform(rng, *area)
    aspect = math.exp(float(rng.uniform(math.log(1 / 1.5), math.log(1.5))))
    width = min(1.0, math.sqrt(kept * aspect))
    height = min(1.0, kept / width)
    left = _uniform(rng, 0, 1 - width)
    top = _uniform(rng, 0, 1 - height)
    box = (left, top, round(left + width, 3), round(top + height, 3))
    cropped = _augly().crop(image, x1=box[0], y1=box[1], x2=box[2], y2=box[3])
    return Edited(cropped, DEFAULT_QUALITY, [{"edit": "crop", "box": list(box)}])


def overlay_emoji(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    emojis = _emojis()
    path = emojis[int(rng.integers(len(emojis)))]
    params = {
        "emoji": f"{path.parent.name}/{path.name}",
        "opacity": _uniform(rng, 0.6, 1.0),
        "emoji_size": _uniform(rng, 0.15, 0.4),
        "x_pos": _uniform(rng, 0.0, 0.7),
        "y_pos": _uniform(rng, 0.0, 0.7),
    }
    arguments = {key: value for key, value in params.items() if key != "emoji"}
    return _augly().overlay_emoji(image, emoji_path=str(path), **arguments), params


def overlay_text(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    fonts = _fonts()
    path, characters = fonts[int(rng.integers(len(fonts)))]
    text = [int(c) for c in rng.integers(0, characters, int(rng.integers(5, 16)))]
    params = {
        "font": path.name,
        "text": text,
        "font_size": _uniform(rng, 0.08, 0.2),
        "opacity": _uniform(rng, 0.6, 1.0),
        "color": _colour(rng),
        "x_pos": _uniform(rng, 0.0, 0.5),
        "y_pos": _uniform(rng, 0.0, 0.8),
    }
    arguments = {key: value for key, value in params.items() if key != "font"}
    with _basic_text_layout():
        return _augly().overlay_text(image, font_file=str(path), **arguments), params


@contextmanager
def _basic_text_layout() -> Iterator[None]:
    """AugLy's fonts loaded with Pillow's own layout: the same pixels with or without libraqm
    (whose shaping also fails on some of the random glyph runs drawn here)."""
    truetype = ImageFont.truetype
    ImageFont.truetype = partial(truetype, layout_engine=ImageFont.Layout.BASIC)
    try:
        yield
    finally:
        ImageFont.truetype = truetype


def screenshot(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    template = ("web.png", "mobile.png")[int(rng.integers(2))]
    folder = _assets() / "screenshot_templates"
    pasted = _augly().overlay_onto_screenshot(
        image,
        template_filepath=str(folder / template),
        template_bboxes_filepath=str(folder / "bboxes.json"),
        crop_src_to_fit=bool(rng.random() < 0.5),
    )
    return pasted, {"template": template}


def pad(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    params: Params = {
        "w_factor": _uniform(rng, 0.05, 0.4),
        "h_factor": _uniform(rng, 0.05, 0.4),
        "color": _colour(rng),
    }
    return _augly().pad(image, **params), params


def rotate(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    degrees = _uniform(rng, 5, 30) * (1 if rng.random() < 0.5 else -1)
    return _augly().rotate(image, degrees=degrees), {"degrees": degrees}


def hflip(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    return _augly().hflip(image), {}


def color_jitter(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    params: Params = {
        "brightness_factor": _uniform(rng, 0.5, 1.5),
        "contrast_factor": _uniform(rng, 0.5, 1.5),
        "saturation_factor": _uniform(rng, 0.0, 2.0),
    }
    return _augly().color_jitter(image, **params), params


def grayscale(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    return _augly().grayscale(image).convert("RGB"), {}


def pixelization(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    ratio = _uniform(rng, 0.25, 0.6)
    return _augly().pixelization(image, ratio=ratio), {"ratio": ratio}


def noise(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    params: Params = {"var": _uniform(rng, 0.005, 0.03), "seed": int(rng.integers(2**31))}
    return _augly().random_noise(image, **params), params


def blur(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    radius = _uniform(rng, 0.5, 2.5)
    return _augly().blur(image, radius=radius), {"radius": radius}


def sharpen(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    factor = _uniform(rng, 2, 15)
    return _augly().sharpen(image, factor=factor), {"factor": factor}


def stripes(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    params = {
        "line_width": _uniform(rng, 0.1, 0.5),
        "line_color": _colour(rng),
        "line_angle": _uniform(rng, -90, 90),
        "line_density": _uniform(rng, 0.1, 0.5),
        "line_type": ("solid", "dashed", "dotted")[int(rng.integers(3))],
        "line_opacity": _uniform(rng, 0.3, 0.7),
    }
    return _augly().overlay_stripes(image, **params), params


def skew(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    params: Params = {"skew_factor": _uniform(rng, -0.4, 0.4), "axis": int(rng.integers(2))}
    return _augly().skew(image, **params), params


def aspect(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    ratio = round(math.exp(float(rng.uniform(math.log(0.5), math.log(2.0)))), 3)
    return _augly().change_aspect_ratio(image, ratio=ratio), {"ratio": ratio}


def opacity(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Params]:
    level = _uniform(rng, 0.4, 0.8)
    # Transparency flattened on white, as a viewer or a screenshot would show it.
    faded = _augly().opacity(image, level=level).convert("RGBA")
    flat = Image.new("RGBA", faded.size, (255, 255, 255, 255))
    return Image.alpha_composite(flat, faded).convert("RGB"), {"level": level}


AUGLY_EDITS: dict[str, Edit] = {
    "overlay_emoji": overlay_emoji,
    "overlay_text": overlay_text,
    "screenshot": screenshot,
    "pad": pad,
    "rotate": rotate,
    "hflip": hflip,
    "color_jitter": color_jitter,
    "grayscale": grayscale,
    "pixelization": pixelization,
    "noise": noise,
    "blur": blur,
    "sharpen": sharpen,
    "stripes": stripes,
    "skew": skew,
    "aspect": aspect,
    "opacity": opacity,
}


def _edited(start: Edited, rng: np.random.Generator, count: int, quality: int | None) -> Edited:
    """`count` different AugLy edits after `start`, saved at `quality` (else nearly lossless)."""
    image, steps = start.image, list(start.steps)
    names = list(AUGLY_EDITS)
    for index in rng.choice(len(names), size=count, replace=False):
        name = names[int(index)]
        image, params = AUGLY_EDITS[name](image.convert("RGB"), rng)
        steps.append({"edit": name, **params})
    if quality is not None:
        steps.append({"edit": "jpeg", "quality": quality})
    return Edited(image.convert("RGB"), quality or DEFAULT_QUALITY, steps)


def _jpeg(rng: np.random.Generator) -> int:
    return int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))


def mild(image: Image.Image, rng: np.random.Generator) -> Edited:
    """Half the time a crop keeping 60-90%, then one or two edits; JPEG 15-45 half the time."""
    start = Edited(image.convert("RGB"), DEFAULT_QUALITY, [])
    if rng.random() < 0.5:
        start = crop(start.image, rng, MILD_AREA)
    count = int(rng.integers(1, 3))
    return _edited(start, rng, count, _jpeg(rng) if rng.random() < 0.5 else None)


def hard(image: Image.Image, rng: np.random.Generator) -> Edited:
    """A crop keeping 10-25% of the area, then two or three edits, then JPEG 15-45."""
    start = crop(image.convert("RGB"), rng, HARD_AREA)
    return _edited(start, rng, int(rng.integers(2, 4)), _jpeg(rng))


STRENGTHS: dict[str, Callable[[Image.Image, np.random.Generator], Edited]] = {
    "mild": mild,
    "hard": hard,
}
