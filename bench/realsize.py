"""Tooling. A corpus of photos at the sizes users have them, made once from Debian wallpapers.

For each distinct wallpaper of the packages below (JPEG, PNG, WebP; about 140): the packaged
file itself, three baseline and three progressive JPEGs of 8-24 megapixels (random crops scaled
to random sizes, with sensor-like grain so upscaled pictures compress like camera photos), and a
PNG of a crop at the source's resolution: about 570 files. Deterministic: one seed, sources in
name order.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from ris.datasets.sources import IMAGE_SUFFIXES, debian_files

PACKAGES = (
    "gnome-backgrounds",
    "lomiri-wallpapers",
    "lomiri-wallpapers-16.04",
    "lomiri-wallpapers-20.04",
    "mate-backgrounds",
    "plasma-workspace-wallpapers",
    "ukui-wallpapers",
)
VERSION = 2
SEED = 20261201
MEGAPIXELS = (8.0, 24.0)
# Thumbnails and icons in the packages are not sources.
MIN_SOURCE_PIXELS = 1_000_000


def _keep(name: str) -> bool:
    return name.startswith("usr/share/") and name.lower().endswith(IMAGE_SUFFIXES)


def wallpapers(cache_dir: Path) -> tuple[list[Path], dict[str, str]]:
    """Every distinct wallpaper photo of PACKAGES (by content), in name order, and versions."""
    seen: set[str] = set()
    files: list[Path] = []
    versions = {}
    for package in PACKAGES:
        root, versions[package] = debian_files(cache_dir, package, _keep)
        for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            digest = hashlib.sha1(path.read_bytes()).hexdigest()
            with Image.open(path) as image:
                large = image.width * image.height >= MIN_SOURCE_PIXELS
            if large and digest not in seen:
                seen.add(digest)
                files.append(path)
    return files, versions


def _crop(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    keep = rng.uniform(0.6, 1.0)
    width, height = int(image.width * keep), int(image.height * keep)
    left = int(rng.integers(0, image.width - width + 1))
    top = int(rng.integers(0, image.height - height + 1))
    return image.crop((left, top, left + width, top + height))


def _at_megapixels(image: Image.Image, megapixels: float, rng: np.random.Generator) -> Image.Image:
    scale = (megapixels * 1e6 / (image.width * image.height)) ** 0.5
    size = (round(image.width * scale), round(image.height * scale))
    pixels = np.asarray(image.resize(size, Image.Resampling.BICUBIC), dtype=np.int16)
    grain = rng.normal(0, 4, size=pixels.shape).astype(np.int16)
    return Image.fromarray(np.clip(pixels + grain, 0, 255).astype(np.uint8))


def _variants(number: int, source: Path, folder: Path) -> list[dict[str, object]]:
    rng = np.random.default_rng([SEED, number])
    stem = f"{number:03d}"
    written: list[dict[str, object]] = []
    original = folder / f"{stem}-original{source.suffix.lower()}"
    shutil.copyfile(source, original)
    written.append({"file": original.name, "source": str(source), "kind": "as packaged"})
    with Image.open(source) as opened:
        image = opened.convert("RGB")
    for progressive in (False, True, False, True, False, True):
        megapixels = float(rng.uniform(*MEGAPIXELS))
        quality = int(rng.integers(85, 96))
        kind = "progressive" if progressive else "baseline"
        path = folder / f"{stem}-{kind}-{len(written)}.jpg"
        _at_megapixels(_crop(image, rng), megapixels, rng).save(
            path, quality=quality, progressive=progressive, optimize=progressive
        )
        written.append({"file": path.name, "megapixels": round(megapixels, 1), "q": quality})
    path = folder / f"{stem}-crop.png"
    _crop(image, rng).save(path)
    written.append({"file": path.name})
    return written


def build_real_corpus(cache_dir: Path, workers: int = 2) -> Path:
    """The corpus folder, built on first use (a few minutes) and reused after."""
    folder = cache_dir / "bench" / f"realsize-v{VERSION}"
    manifest = folder / "manifest.json"
    if manifest.exists():
        return folder
    sources, versions = wallpapers(cache_dir)
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with ProcessPoolExecutor(workers) as pool:
        files = [
            row
            for rows in pool.map(_variants, range(len(sources)), sources, [staging] * len(sources))
            for row in rows
        ]
    description = {"version": VERSION, "seed": SEED, "packages": versions, "files": files}
    (staging / "manifest.json").write_text(json.dumps(description, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder


def corpus_format(path: Path) -> str:
    """The format a decoder sees: jpeg-baseline, jpeg-progressive, png or webp."""
    with Image.open(path) as image:
        if image.format == "JPEG":
            return "jpeg-progressive" if image.info.get("progressive") else "jpeg-baseline"
        return str(image.format).lower()


if __name__ == "__main__":
    from ris.settings import load_settings

    print(build_real_corpus(load_settings().cache_dir))
