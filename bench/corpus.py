"""Benchmark corpora: JPEG photos of typical size made from real photos, or empty placeholders."""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

from ris.datasets.samples import sample_photos

# About 500x375 on average, like gallery photos; quality 90 like a camera's "fine" setting.
MEAN_WIDTH, MEAN_HEIGHT = 500, 375
CORPUS_VERSION = 2


def _variant(source: Image.Image, rng: random.Random) -> Image.Image:
    width, height = source.size
    keep = rng.uniform(0.5, 1.0)
    crop_w, crop_h = max(32, int(width * keep)), max(32, int(height * keep))
    left, top = rng.randint(0, width - crop_w), rng.randint(0, height - crop_h)
    image = source.crop((left, top, left + crop_w, top + crop_h))
    if rng.random() < 0.5:
        image = ImageOps.mirror(image)
    image = ImageEnhance.Color(image).enhance(rng.uniform(0.7, 1.3))
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.8, 1.2))
    target_w = int(MEAN_WIDTH * rng.uniform(0.7, 1.3))
    aspect = rng.choice((4 / 3, 3 / 2, 4 / 3, 16 / 9, 3 / 4, 4 / 3, 3 / 2, 3 / 2))
    return image.resize((target_w, max(64, int(target_w / aspect))), Image.Resampling.BILINEAR)


def build_corpus(cache_dir: Path, count: int = 2000) -> list[Path]:
    """`count` JPEGs under cache_dir/bench/, generated once with a fixed seed, then reused."""
    folder = cache_dir / "bench" / f"corpus-v{CORPUS_VERSION}-{count}"
    done = folder / ".complete"
    if not done.exists():
        sources = []
        for path in sample_photos(cache_dir):
            with Image.open(path) as image:
                sources.append(image.convert("RGB"))
        rng = random.Random(20261127)
        for number in range(count):
            target = folder / f"{number // 500:02d}" / f"photo-{number:05d}.jpg"
            target.parent.mkdir(parents=True, exist_ok=True)
            _variant(sources[number % len(sources)], rng).save(target, quality=90)
        done.touch()
    return sorted(folder.rglob("*.jpg"))


def same_photo(path: str | Path, other: str | Path, sources: int) -> bool:
    """Whether two corpus files are variants of the same sample photo (of `sources`); a path
    outside the corpus is a variant of none."""
    if not Path(path).stem.startswith("photo-"):
        return False
    number = int(Path(path).stem.removeprefix("photo-"))
    return number % sources == int(Path(other).stem.removeprefix("photo-")) % sources


def placeholder_tree(root: Path, files: int, per_folder: int = 1_000) -> Path:
    """`files` empty .jpg files under `root` in folders of `per_folder`, made once, then reused
    (scanning reads names only; the benchmark stand-in pipeline never opens them)."""
    done = root / ".complete"
    if not done.exists():
        for number in range(files):
            folder = root / f"{number // per_folder:04d}"
            if number % per_folder == 0:
                folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{number:07d}.jpg").touch()
        done.touch()
    return root
