"""Pictures pasted on a flat background inside a query (a screenshot's photo, a framed or
letterboxed picture), searched again when nothing the whole query found verifies."""

from __future__ import annotations

import itertools

import cv2
import numpy as np

from ris.embedding.imaging import ImageSource, cut_out, decoding, open_image, upright_rgb

# Regions are found on the picture shrunk to this side: a screenshot's UI text is then a few
# pixels tall, and a pasted picture tens.
FIND_SIDE = 256
# A colour covering this share of the shrunk picture (in 16 levels a channel) may be background.
BACKGROUND_SHARE = 0.02
# A pixel is background when within this of such a colour on every channel and flat around it
# (the grey standard deviation of the FLAT_WINDOW-pixel square around it under FLAT_STD): a
# smooth gradient in a photo has many colours, none frequent, and a photo's flat fill is rarely
# that flat.
BACKGROUND_TOLERANCE = 10
FLAT_STD = 3.0
FLAT_WINDOW = 5
# What is not background is opened by a square this share of the side, which removes text,
# icons and thin lines and keeps solid regions.
OPENING_SHARE = 1 / 24
# A region's box must cover this share of the picture: smaller holds too little to search,
# larger is the whole picture (an ordinary photo, whose background share is small anyway).
REGION_AREA = (0.03, 0.8)
# A region must fill this share of its box: a pasted picture is a rectangle (less where it was
# skewed or holds flat fill itself), an object drawn on a plain background mostly is not.
RECTANGULAR = 0.75
# The largest regions searched, largest first: a screenshot may hold an ad beside the picture.
MOST_REGIONS = 2
# A picture padded by a border (AugLy's padding, a frame) whose own flat fill is frequent too (a
# flat wallpaper, an object on white) breaks into pieces when all that fill counts as background.
# Where no region is found so, searches (`padded`) take as background only the one fill that
# holds this share of the picture's edge pixels (a picture rotated before it was padded leaves
# dark corners on them), and a region must then fill this share of its box: a padded picture is
# a rectangle, while an object on white, its own flat fill no longer background, often fills
# 0.75. Chosen by looking at what each setting boxed among the queries of every copy-detection
# set: 246 pictures, nearly all padded or shown in a screenshot, where 0.9 of the edge boxed 213
# and missed rotated ones. Duplicate groups do not ask: their cuts and pixel checks lost about as
# many pairs as they gained (docs/BENCHMARKS.md, "Flat pictures padded by a border").
SURROUNDING_EDGE = 0.75
SURROUNDED_RECTANGULAR = 0.85
# A letterboxed picture (a video frame, a portrait photo fitted into a wider box: AugLy's
# screenshots fit a picture so) lies between two solid bars of flat dark fill, this dark at most
# on every channel, whose facing sides run the same length: left and right bars of one top and
# height, or top and bottom bars of one left and width, to within BAR_SLACK pixels of the
# shrunk picture. A bar fills this share of its box (a narrow one loses its edges to the
# flatness window), and runs at least BAR_LENGTH of the picture's longer side. Its picture may
# share the screenshot's background colour (an object on white), so the bars, not the colours,
# tell where it is.
BAR_LEVEL = 40
BAR_FILL = 0.8
BAR_LENGTH = 0.1
BAR_SLACK = 2
# Decoded at least this many pixels on a side before the cut: a pasted picture a fifth of a
# screenshot's width still gets what local features (ris/search/verify.py's MAX_SIDE) use.
DECODE_SIDE = 1600


# (left, top, right, bottom): as shares of the sides, or in pixels.
Box = tuple[float, float, float, float]


def pasted_boxes(rgb: np.ndarray, padded: bool = False) -> list[Box]:
    """Boxes (left, top, right, bottom as shares of the width and height) of the pictures
    between letterbox bars in an RGB array, then of its largest regions that stand out from a
    flat background (or, where none does and `padded` asks, from the border around a padded
    picture), each largest first, at most MOST_REGIONS in all."""
    height, width = rgb.shape[:2]
    scale = FIND_SIDE / max(height, width)
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    # Computed once: both the bars and the background are flat fill.
    flat = _flatness(rgb) < FLAT_STD
    letterboxed = _between_bars(rgb, flat)
    background = _background(rgb, flat)
    if background is None:
        return letterboxed[:MOST_REGIONS]
    boxes = _regions(background, RECTANGULAR, letterboxed)
    surrounding = None if boxes or letterboxed or not padded else _surrounding(background)
    if surrounding is not None:
        boxes = _regions(surrounding, SURROUNDED_RECTANGULAR, [])
    return [_shares(box, rgb.shape) for box in letterboxed + boxes][:MOST_REGIONS]


def _regions(background: np.ndarray, rectangular: float, letterboxed: list[Box]) -> list[Box]:
    """Boxes (in pixels) of the largest regions standing out from the `background` that fill
    `rectangular` of their box, each of REGION_AREA and none over a `letterboxed` picture."""
    side = max(3, round(max(background.shape) * OPENING_SHARE))
    square = cv2.getStructuringElement(cv2.MORPH_RECT, (side, side))
    solid = cv2.morphologyEx((~background).astype(np.uint8), cv2.MORPH_OPEN, square)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(solid, connectivity=4)
    boxes: list[Box] = []
    for label in 1 + np.argsort(-stats[1:, cv2.CC_STAT_AREA])[:MOST_REGIONS]:
        left, top, box_width, box_height = (int(value) for value in stats[label, :4])
        region = labels[top : top + box_height, left : left + box_width] == label
        if region.mean() < rectangular:
            continue
        # Rows and columns mostly outside the region are trimmed: a caption close under a
        # picture joins it along a few pixels, where the flatness window spans both.
        rows = np.flatnonzero(region.mean(axis=1) >= 0.5)
        columns = np.flatnonzero(region.mean(axis=0) >= 0.5)
        # The flatness window marks the background FLAT_WINDOW // 2 pixels around a picture.
        ring = FLAT_WINDOW // 2
        left, right = left + columns[0] + ring, left + columns[-1] + 1 - ring
        top, bottom = top + rows[0] + ring, top + rows[-1] + 1 - ring
        if _area((left, top, right, bottom), background.shape) and not any(
            _overlapping((left, top, right, bottom), inner) for inner in letterboxed
        ):
            boxes.append((left, top, right, bottom))
    return boxes


def _surrounding(background: np.ndarray) -> np.ndarray | None:
    """The connected part of the `background` holding SURROUNDING_EDGE of the picture's edge
    pixels (a border around a padded picture); None when no part does."""
    _, labels = cv2.connectedComponents(background.astype(np.uint8), connectivity=4)
    edge = np.concatenate([labels[0], labels[-1], labels[1:-1, 0], labels[1:-1, -1]])
    parts, counts = np.unique(edge[edge > 0], return_counts=True)
    if len(parts) == 0 or counts.max() < SURROUNDING_EDGE * edge.size:
        return None
    return labels == parts[np.argmax(counts)]


def _area(box: Box, shape: tuple[int, ...]) -> bool:
    """Whether the box (in pixels) covers a share of the picture in REGION_AREA."""
    left, top, right, bottom = box
    area = max(0.0, right - left) * max(0.0, bottom - top) / (shape[0] * shape[1])
    return REGION_AREA[0] <= area <= REGION_AREA[1]


def _shares(box: Box, shape: tuple[int, ...]) -> Box:
    """A box in pixels as shares of the picture's width and height."""
    left, top, right, bottom = box
    return (left / shape[1], top / shape[0], right / shape[1], bottom / shape[0])


def _overlapping(first: Box, second: Box) -> bool:
    """Whether two boxes share more than half the smaller one's area."""
    width = min(first[2], second[2]) - max(first[0], second[0])
    height = min(first[3], second[3]) - max(first[1], second[1])
    smaller = min((box[2] - box[0]) * (box[3] - box[1]) for box in (first, second))
    return width > 0 and height > 0 and width * height > smaller / 2


def _between_bars(rgb: np.ndarray, flat: np.ndarray) -> list[Box]:
    """Boxes (in pixels) of the pictures between pairs of facing letterbox bars (of the `flat`
    pixels), largest first."""
    dark = flat & (rgb.max(axis=2) <= BAR_LEVEL)
    count, _, stats, _ = cv2.connectedComponentsWithStats(dark.astype(np.uint8), connectivity=4)
    length = BAR_LENGTH * max(rgb.shape[:2])
    bars = [
        (int(left), int(top), int(left + width), int(top + height))
        for left, top, width, height, area in stats[1:count].tolist()
        if area >= BAR_FILL * width * height and max(width, height) >= length
    ]
    boxes: list[Box] = []
    for first, second in itertools.permutations(bars, 2):
        # Left and right bars of one top and height, then top and bottom of one left and width.
        for near, far, across in ((0, 2, (1, 3)), (1, 3, (0, 2))):
            facing = all(abs(first[side] - second[side]) <= BAR_SLACK for side in across)
            if facing and first[far] < second[near]:
                sides = [float(side) for side in first]
                sides[near], sides[far] = first[far], second[near]
                box = (sides[0], sides[1], sides[2], sides[3])
                if _area(box, rgb.shape):
                    boxes.append(box)
    # A picture between nested bars (a pair inside a wider pair) is the innermost.
    boxes.sort(key=lambda box: (box[2] - box[0]) * (box[3] - box[1]))
    inner: list[Box] = []
    for box in boxes:
        if not any(_overlapping(box, kept) for kept in inner):
            inner.append(box)
    return sorted(inner, key=lambda box: -(box[2] - box[0]) * (box[3] - box[1]))


def _background(rgb: np.ndarray, flat: np.ndarray) -> np.ndarray | None:
    """Which pixels are `flat` fill of a frequent colour; None when no colour is frequent."""
    levels = (rgb // 16).astype(np.int32)
    codes = ((levels[..., 0] << 8) | (levels[..., 1] << 4) | levels[..., 2]).ravel()
    counts = np.bincount(codes, minlength=1 << 12)
    frequent = np.flatnonzero(counts >= BACKGROUND_SHARE * codes.size)
    if len(frequent) == 0:
        return None
    sums = [np.bincount(codes, rgb[..., channel].ravel(), 1 << 12) for channel in range(3)]
    near = np.zeros(rgb.shape[:2], dtype=bool)
    for code in frequent:
        colour = np.array([total[code] for total in sums]) / counts[code]
        low = np.clip(colour - BACKGROUND_TOLERANCE, 0, 255)
        high = np.clip(colour + BACKGROUND_TOLERANCE, 0, 255)
        near |= cv2.inRange(rgb, np.ceil(low), np.floor(high)) > 0
    return near & flat


def _flatness(rgb: np.ndarray) -> np.ndarray:
    """Each pixel's grey standard deviation over the FLAT_WINDOW square around it."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    window = (FLAT_WINDOW, FLAT_WINDOW)
    mean = cv2.blur(grey, window)
    return np.sqrt(np.maximum(cv2.blur(grey * grey, window) - mean * mean, 0))


def pasted_pictures(source: ImageSource, max_pixels: int, padded: bool = False) -> list[bytes]:
    """The pictures pasted inside an upright query picture (pasted_boxes, `padded` ones too
    when asked), each cut out as PNG bytes, which the embedding pipeline and local features read
    as they read an upload; raises ImageDecodeError if the picture cannot be read."""
    # Found on a cheap small decode; the picture is decoded larger only to cut out what it holds.
    boxes, _ = picture_boxes(source, max_pixels, FIND_SIDE, padded)
    return cut_out(source, max_pixels, DECODE_SIDE, boxes) if boxes else []


def picture_boxes(
    source: ImageSource, max_pixels: int, draft_side: int, padded: bool = False
) -> tuple[list[Box], tuple[int, int]]:
    """pasted_boxes of the upright picture decoded at least `draft_side` on a side, and that
    decode's (width, height); raises ImageDecodeError if the picture cannot be read."""
    with open_image(source, max_pixels) as image, decoding():
        rgb = np.asarray(upright_rgb(image, source, draft_side))
    return pasted_boxes(rgb, padded), (rgb.shape[1], rgb.shape[0])
