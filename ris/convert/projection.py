"""Tooling. A compact descriptor's projection, learned once on pairs of wallpaper crops.

Learned whitening (Radenović et al., "Fine-tuning CNN image retrieval with no human
annotation"): whiten by the covariance of the differences between a crop and an edited copy of
it, then keep the principal directions of the whitened descriptors. The pairs are cut from
Debian wallpaper photos that the tuning sets (tuxpaint, copydetect) do not use; the held-out
augly sets do use them whole, so the compact model's augly figures are not held out.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from ris.datasets.sources import OTHER_WALLPAPERS, package_images
from ris.embedding.imaging import to_rgb

PAIRS_PER_PHOTO = 100
SEED = 1


def random_crop(image: Image.Image, rng: np.random.Generator, least: float) -> Image.Image:
    width, height = image.size
    area = rng.uniform(least, 1.0) * width * height
    aspect = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
    crop_width = max(1, int(min(width, np.sqrt(area * aspect))))
    crop_height = max(1, int(min(height, np.sqrt(area / aspect))))
    left = int(rng.integers(0, width - crop_width + 1))
    top = int(rng.integers(0, height - crop_height + 1))
    return image.crop((left, top, left + crop_width, top + crop_height))


def _edited(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A copy as people make one: part of the picture, recoloured, maybe flipped, recompressed."""
    copy = random_crop(image, rng, least=0.25)
    copy = ImageEnhance.Color(copy).enhance(rng.uniform(0.6, 1.4))
    copy = ImageEnhance.Brightness(copy).enhance(rng.uniform(0.8, 1.2))
    if rng.random() < 0.5:
        copy = copy.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    encoded = io.BytesIO()
    copy.save(encoded, "JPEG", quality=int(rng.integers(30, 80)))
    encoded.seek(0)
    return Image.open(encoded).convert("RGB")


def wallpaper_photos(cache_dir: Path) -> Iterator[Image.Image]:
    """The wallpaper photos, decoded to at most 1600 px a side, in a stable order."""
    for package in OTHER_WALLPAPERS:
        for path in package_images(cache_dir, package)[0].values():
            with Image.open(path) as image:
                image.draft("RGB", (1024, 1024))
                photo = to_rgb(image)
                photo.load()  # the pixels, before the file closes
            photo.thumbnail((1600, 1600))
            yield photo


def crop_pairs(cache_dir: Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Crops of the wallpaper photos and an edited copy of each, as uint8 (N, size, size, 3)."""
    rng = np.random.default_rng(SEED)
    crops: list[np.ndarray] = []
    copies: list[np.ndarray] = []
    for photo in wallpaper_photos(cache_dir):
        for _ in range(PAIRS_PER_PHOTO):
            crop = random_crop(photo, rng, least=0.05)
            for kept, image in ((crops, crop), (copies, _edited(crop, rng))):
                kept.append(np.asarray(image.resize((size, size), Image.Resampling.BILINEAR)))
    return np.stack(crops), np.stack(copies)


def learned_whitening(
    crops: np.ndarray, copies: np.ndarray, dim: int, shrinkage: float
) -> tuple[np.ndarray, np.ndarray]:
    """(mean, projection) mapping unit descriptors to `dim` dimensions: x -> (x - mean) @ P.

    The pairs' difference covariance gets `shrinkage` times its mean eigenvalue added on the
    diagonal: about 6,000 pairs cannot pin down 2,560 dimensions (ModelSpec says how much).
    """
    both = np.concatenate([crops, copies]).astype(np.float64)
    mean = both.mean(axis=0)
    differences = (crops - copies).astype(np.float64)
    within = differences.T @ differences / len(differences)
    within += shrinkage * np.trace(within) / len(within) * np.eye(len(within))
    eigenvalues, eigenvectors = np.linalg.eigh(within)
    whitening = eigenvectors @ np.diag(eigenvalues**-0.5) @ eigenvectors.T
    whitened = (both - mean) @ whitening
    spread, directions = np.linalg.eigh(np.cov(whitened.T))
    projection = whitening @ directions[:, np.argsort(-spread)[:dim]]
    return mean.astype(np.float32), projection.astype(np.float32)


def learn_projection(
    describe: Callable[[np.ndarray], np.ndarray],
    cache_dir: Path,
    size: int,
    dim: int,
    shrinkage: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The projection for a model whose unit descriptors `describe` computes from uint8 images."""
    crops, copies = crop_pairs(cache_dir, size)
    return learned_whitening(describe(crops), describe(copies), dim, shrinkage)
