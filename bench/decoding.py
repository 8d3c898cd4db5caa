"""Decode cost per format on one core: the product's decoder against today's (Pillow draft only)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
from PIL import Image

from bench.realsize import corpus_format
from ris.embedding import imaging
from ris.embedding.imaging import ImageSource, load_image


def todays_draft(image: Image.Image, source: ImageSource, side: int) -> Image.Image:
    """The decoder before reduced decoding: JPEG draft mode only, every other format whole."""
    image.draft("RGB", (side, side))
    return image


def use_todays_decoder() -> None:
    imaging.draft = todays_draft


@contextmanager
def todays_decoder() -> Iterator[None]:
    product = imaging.draft
    use_todays_decoder()
    try:
        yield
    finally:
        imaging.draft = product


def _mean_ms(paths: list[Path], size: int, frame_removal: bool) -> float:
    start = time.perf_counter()
    for path in paths:
        load_image(str(path), size, 10**9, frame_removal)
    return (time.perf_counter() - start) * 1000 / len(paths)


def decode_ms_by_format(
    paths: list[Path], size: int = 224, frame_removal: bool = True
) -> dict[str, dict[str, float]]:
    """Per format: files, mean ms per file to the model's input (decode, upright, frame removal,
    resize) with the product's decoder and with today's, one core, files read from the page
    cache (each file is read once before timing)."""
    cv2.setNumThreads(1)
    by_format: dict[str, list[Path]] = defaultdict(list)
    for path in paths:
        path.read_bytes()
        by_format[corpus_format(path)].append(path)
    rows = {}
    for name, files in sorted(by_format.items()):
        product = _mean_ms(files, size, frame_removal)
        with todays_decoder():
            today = _mean_ms(files, size, frame_removal)
        rows[name] = {
            "files": len(files),
            "ms": round(product, 1),
            "baseline_ms": round(today, 1),
            "speedup": round(today / product, 2),
        }
    every = [path for files in by_format.values() for path in files]
    weights = {name: row["files"] / len(every) for name, row in rows.items()}
    rows["all"] = {
        "files": len(every),
        "ms": round(sum(rows[n]["ms"] * w for n, w in weights.items()), 1),
        "baseline_ms": round(sum(rows[n]["baseline_ms"] * w for n, w in weights.items()), 1),
    }
    rows["all"]["speedup"] = round(rows["all"]["baseline_ms"] / rows["all"]["ms"], 2)
    return rows
