"""Contact sheets: a query beside its top results, or a duplicate group, with scores, as PNG."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps

from ris.duplicates.groups import DuplicateGroup
from ris.embedding.imaging import open_image
from ris.search.image_search import SearchResult

TILE = 220
CAPTION = 34
MARGIN = 8
COLUMNS = 6


def _tile(path: str, caption: str, highlight: bool, max_pixels: int) -> Image.Image:
    tile = Image.new("RGB", (TILE, TILE + CAPTION), "white")
    try:
        with open_image(path, max_pixels) as image:
            image.draft("RGB", (TILE, TILE))
            picture = ImageOps.exif_transpose(image).convert("RGB")
            picture.thumbnail((TILE - 2 * MARGIN, TILE - 2 * MARGIN))
        tile.paste(picture, ((TILE - picture.width) // 2, (TILE - picture.height) // 2))
    except Exception as error:  # noqa: BLE001 - a missing file still gets its place and reason
        caption = f"{caption} ({error})"
    draw = ImageDraw.Draw(tile)
    if highlight:
        draw.rectangle((0, 0, TILE - 1, TILE + CAPTION - 1), outline=(47, 111, 223), width=3)
    draw.text((MARGIN, TILE - 2), caption[:34], fill=(29, 36, 48))
    return tile


def contact_sheet(
    query: str, results: Sequence[SearchResult], destination: Path, max_pixels: int = 10**8
) -> int:
    """Write the sheet to `destination` (PNG); returns the number of tiles, query included."""
    tiles = [("query", query, True)]
    for result in results:
        verified = "  verified" if result.verified else ""
        label = f"#{result.rank}  {result.score:.3f}{verified}  {os.path.basename(result.path)}"
        tiles.append((label, result.path, False))
    return _write_sheet(tiles, destination, max_pixels)


def group_sheet(group: DuplicateGroup, destination: Path, max_pixels: int = 10**8) -> int:
    """A duplicate group's images, the one to keep first and framed; returns the tile count."""
    tiles = []
    for position, image in enumerate(group.images):
        size = f"{image.width}x{image.height}" if image.width else "?"
        label = f"{'keep' if position == 0 else f'{image.score:.3f}'}  {size}  "
        tiles.append((label + os.path.basename(image.path), image.path, position == 0))
    return _write_sheet(tiles, destination, max_pixels)


def _write_sheet(tiles: Sequence[tuple[str, str, bool]], destination: Path, max_pixels: int) -> int:
    """(caption, path, framed) tiles in rows of COLUMNS, written as one PNG."""
    drawn = [_tile(path, caption, framed, max_pixels) for caption, path, framed in tiles]
    columns = min(COLUMNS, len(drawn))
    rows = -(-len(drawn) // columns)
    sheet = Image.new("RGB", (columns * TILE, rows * (TILE + CAPTION)), (246, 247, 249))
    for number, tile in enumerate(drawn):
        sheet.paste(tile, ((number % columns) * TILE, (number // columns) * (TILE + CAPTION)))
    sheet.save(destination, format="PNG")
    return len(drawn)
