"""Descriptor variants on the development sets, by exact search in memory (`make bench-quality`).

Each variant changes one thing against the plain baseline (decoding, input, normalisation,
pooling, backbone, post-processing). Images go through the real decoder and each backbone's
feature map (ONNX, any input size); pooled descriptors are compared by brute force, so the
figures isolate the descriptor. The models worth shipping are then measured through the whole
pipeline by `bench.quality` (`query eval`).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps
from rich.console import Console
from rich.table import Table

from bench.measure import merge_json
from ris.convert.export import backbone_module, export_module
from ris.convert.projection import random_crop, wallpaper_photos
from ris.datasets import dataset_path
from ris.embedding.imaging import open_image, remove_frame, to_rgb
from ris.embedding.models import BACKBONES, IMAGENET_MEAN, IMAGENET_STD, Backbone
from ris.embedding.session import l2_normalise
from ris.evaluation.eval_sets import EvalSet, read_eval_set
from ris.evaluation.metrics import MetricMeans, class_retrieval_metrics, copy_detection_metrics
from ris.settings import load_settings

console = Console(highlight=False, width=130)
SETS = ("tuxpaint", "copydetect-mild", "copydetect-hard")
TOP_K = 10
MAX_PIXELS = 100_000_000
WHITE, GREY, BLACK = (255, 255, 255), (124, 116, 104), (0, 0, 0)
# Whitening is learned on random crops of photos that no development set uses
# (ris.convert.projection.wallpaper_photos), never on the images it is evaluated on.
WHITENING_CROPS_PER_IMAGE = 150


@dataclass(frozen=True)
class Decoding:
    """How a file becomes the square (or aspect-kept) uint8 image a backbone sees."""

    size: int = 224
    resize: str = "squash"  # squash to size x size, "short" side to size, or "crop" the centre
    background: tuple[int, int, int] = WHITE
    frame_removal: bool = False
    exif: bool = True


@dataclass(frozen=True)
class Variant:
    label: str
    backbone: str = "efficientnet-lite0"
    decoding: Decoding = Decoding()
    pooling: str = "avg"  # avg, gem or max
    extra_sizes: tuple[int, ...] = ()  # multi-scale: more input sizes, descriptors summed
    imagenet_normalisation: bool = False
    whitening: bool = False
    query_expansion: int = 0  # alpha-QE over this many top results
    with_backbones: tuple[Variant, ...] = field(default=())  # concatenated with these


def decode(path: str, decoding: Decoding) -> np.ndarray:
    with open_image(path, MAX_PIXELS) as image:
        side = decoding.size * 3 // 4
        image.draft("RGB", (side, side))
        oriented = ImageOps.exif_transpose(image) if decoding.exif else image
        upright = to_rgb(oriented, decoding.background)
        if decoding.frame_removal:
            upright = remove_frame(upright)
        return np.asarray(_resize(upright, decoding), dtype=np.uint8)


def _resize(image: Image.Image, decoding: Decoding) -> Image.Image:
    size, (width, height) = decoding.size, image.size
    if decoding.resize == "squash":
        return image.resize((size, size), Image.Resampling.BILINEAR)
    scale = size / min(width, height)
    scaled = image.resize(
        (max(size, round(width * scale)), max(size, round(height * scale))),
        Image.Resampling.BILINEAR,
    )
    if decoding.resize == "short":
        return scaled
    left, top = (scaled.width - size) // 2, (scaled.height - size) // 2
    return scaled.crop((left, top, left + size, top + size))


@cache
def feature_map_session(backbone: Backbone, cache_dir: Path) -> ort.InferenceSession:
    """The backbone's feature map as an ONNX graph taking images of any size, exported once."""
    recipe = hashlib.sha256(repr(dataclasses.asdict(backbone)).encode()).hexdigest()[:12]
    path = cache_dir / "models" / f"sweep-{backbone.name}-{recipe}.onnx"
    if not path.exists():
        export_module(backbone_module(backbone, cache_dir), 224, path, ["map"], spatial=True)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def pool(feature_map: np.ndarray, pooling: str) -> np.ndarray:
    flat = feature_map.reshape(feature_map.shape[0], -1)
    if pooling == "max":
        return flat.max(axis=1)
    if pooling == "gem":
        return np.power(np.power(np.clip(flat, 1e-6, None), 3).mean(axis=1), 1 / 3)
    return flat.mean(axis=1)


class Descriptors:
    """Pooled descriptors of every image per (backbone, decoding), computed once, timed."""

    def __init__(self, cache_dir: Path):
        self.cache_dir = cache_dir
        self.maps: dict[tuple[Backbone, Decoding, str], np.ndarray] = {}
        self.seconds_per_image: dict[tuple[Backbone, Decoding], float] = {}

    def backbone(self, variant: Variant) -> Backbone:
        backbone = BACKBONES[variant.backbone]
        if variant.imagenet_normalisation:
            return dataclasses.replace(backbone, mean=IMAGENET_MEAN, std=IMAGENET_STD)
        return backbone

    def pooled(self, variant: Variant, decoding: Decoding, paths: list[str]) -> np.ndarray:
        backbone = self.backbone(variant)
        key = (backbone, decoding, variant.pooling)
        stored = self._stored(backbone, decoding, paths)
        if key not in self.maps and stored.exists():
            with np.load(stored) as saved:
                self.seconds_per_image[(backbone, decoding)] = float(saved["seconds"])
                for name in ("avg", "gem", "max"):
                    self.maps[(backbone, decoding, name)] = saved[name]
        if key not in self.maps:
            session = feature_map_session(backbone, self.cache_dir)
            started, vectors = time.perf_counter(), {}
            pooled_by: dict[str, list[np.ndarray]] = {name: [] for name in ("avg", "gem", "max")}
            for path in paths:
                feature_map = session.run(None, {"images": decode(path, decoding)[None]})[0][0]
                for name, values in pooled_by.items():
                    values.append(pool(feature_map, name))
            self.seconds_per_image[(backbone, decoding)] = (time.perf_counter() - started) / len(
                paths
            )
            for name, values in pooled_by.items():
                vectors[name] = np.stack(values)
                self.maps[(backbone, decoding, name)] = vectors[name]
            stored.parent.mkdir(parents=True, exist_ok=True)
            seconds = self.seconds_per_image[(backbone, decoding)]
            np.savez(
                stored,
                seconds=np.asarray(seconds),
                avg=vectors["avg"],
                gem=vectors["gem"],
                max=vectors["max"],
            )
        return self.maps[key]

    def _stored(self, backbone: Backbone, decoding: Decoding, paths: list[str]) -> Path:
        """Where a finished pass is kept, so a rerun (after a crash, say) does not redo it."""
        key = repr((dataclasses.asdict(backbone), dataclasses.asdict(decoding), paths))
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        return self.cache_dir / "sweep" / f"{backbone.name}-{digest}.npz"

    def describe(self, variant: Variant, paths: list[str]) -> tuple[np.ndarray, float]:
        """(L2-normalised descriptors, seconds per image to compute them)."""
        sizes = (variant.decoding.size, *variant.extra_sizes)
        decodings = [dataclasses.replace(variant.decoding, size=size) for size in sizes]
        summed = sum(l2_normalise(self.pooled(variant, d, paths)) for d in decodings)
        seconds = sum(self.seconds_per_image[(self.backbone(variant), d)] for d in decodings)
        vectors = l2_normalise(np.asarray(summed))
        for other in variant.with_backbones:
            more, more_seconds = self.describe(other, paths)
            vectors, seconds = np.concatenate([vectors, more], axis=1), seconds + more_seconds
        return l2_normalise(vectors), seconds


def learn_whitening(variant: Variant, cache_dir: Path) -> Callable[[np.ndarray], np.ndarray]:
    """PCA whitening (Radenovic et al.) learned on random crops of unrelated wallpapers."""
    rng = np.random.default_rng(0)
    session = feature_map_session(BACKBONES[variant.backbone], cache_dir)
    vectors = []
    for photo in wallpaper_photos(cache_dir):
        for _ in range(WHITENING_CROPS_PER_IMAGE):
            crop = random_crop(photo, rng, least=0.05).resize((224, 224), Image.Resampling.BILINEAR)
            feature_map = session.run(None, {"images": np.asarray(crop)[None]})[0][0]
            vectors.append(pool(feature_map, variant.pooling))
    training = l2_normalise(np.stack(vectors))
    mean = training.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov((training - mean).T))
    projection = eigenvectors / np.sqrt(np.maximum(eigenvalues, 1e-9))
    console.print(f"whitening learned from {len(training)} wallpaper crops")
    return lambda descriptors: l2_normalise((descriptors - mean) @ projection)


def score(eval_set: EvalSet, vectors: dict[str, np.ndarray], expansion: int) -> dict[str, float]:
    gallery = np.stack([vectors[path] for path in eval_set.gallery])
    means = MetricMeans()
    for query in eval_set.queries:
        query_vector = vectors[query.path]
        similarities = gallery @ query_vector
        if expansion:
            top = [i for i in np.argsort(-similarities)[: expansion + 1]][:expansion]
            top = [i for i in top if eval_set.gallery[i] != query.path]
            weights = np.clip(similarities[top], 0, None) ** 3
            query_vector = query_vector + (weights[:, None] * gallery[top]).sum(axis=0)
            similarities = gallery @ (query_vector / np.linalg.norm(query_vector))
        order = np.argsort(-similarities)[: TOP_K + 1]
        ranked = [eval_set.gallery[i] for i in order if eval_set.gallery[i] != query.path][:TOP_K]
        if eval_set.kind == "copy":
            (original,) = query.relevant
            means.add(**copy_detection_metrics(ranked, original, TOP_K))
        else:
            means.add(**class_retrieval_metrics(ranked, query.relevant, TOP_K))
    return means.means()


BASE = Variant("plain baseline: Lite0, avg, squash to 224, mean = std = 0.5")
LITE0_GEM = Variant("Lite0 GeM", pooling="gem")
MOBILENET_GEM = Variant("MobileNetV2 GeM", backbone="mobilenet-v2", pooling="gem")
FRAMELESS = Decoding(frame_removal=True)
VARIANTS = (
    BASE,
    Variant("input 320", decoding=Decoding(size=320)),
    Variant("input 320, GeM", decoding=Decoding(size=320), pooling="gem"),
    Variant("resize: short side to 224, aspect kept", decoding=Decoding(resize="short")),
    Variant("resize: short side, centre crop", decoding=Decoding(resize="crop")),
    Variant("normalisation: ImageNet mean/std", imagenet_normalisation=True),
    Variant("RGBA on grey instead of white", decoding=Decoding(background=GREY)),
    Variant("RGBA on black instead of white", decoding=Decoding(background=BLACK)),
    Variant("EXIF orientation ignored", decoding=Decoding(exif=False)),
    Variant("pooling: max", pooling="max"),
    LITE0_GEM,
    Variant("multi-scale 224 + 320, GeM", pooling="gem", extra_sizes=(320,)),
    Variant("Lite0 GeM + PCA whitening (wallpapers)", pooling="gem", whitening=True),
    Variant("Lite0 GeM + query expansion (2)", pooling="gem", query_expansion=2),
    Variant("Lite0 GeM, frame removal", pooling="gem", decoding=FRAMELESS),
    Variant(
        "Lite1 240 GeM", backbone="efficientnet-lite1", decoding=Decoding(size=240), pooling="gem"
    ),
    Variant(
        "Lite2 260 GeM", backbone="efficientnet-lite2", decoding=Decoding(size=260), pooling="gem"
    ),
    Variant("MobileNetV2 avg", backbone="mobilenet-v2"),
    MOBILENET_GEM,
    Variant("Lite0 GeM + MobileNetV2 GeM", pooling="gem", with_backbones=(MOBILENET_GEM,)),
    Variant(
        "Lite0 GeM + MobileNetV2 GeM, frame removal (default)",
        pooling="gem",
        decoding=FRAMELESS,
        with_backbones=(dataclasses.replace(MOBILENET_GEM, decoding=FRAMELESS),),
    ),
)


@dataclass
class Row:
    variant: str
    tuxpaint_map: float
    mild_recall_at_1: float
    hard_recall_at_1: float
    images_per_s: float


def run(variants: tuple[Variant, ...], cache_dir: Path) -> list[Row]:
    sets = {name: read_eval_set(dataset_path(name, cache_dir)) for name in SETS}
    paths = sorted({p for s in sets.values() for p in [*s.gallery, *(q.path for q in s.queries)]})
    descriptors = Descriptors(cache_dir)
    rows = []
    for variant in variants:
        console.print(f"{variant.label} ...")
        vectors, seconds = descriptors.describe(variant, paths)
        if variant.whitening:
            vectors = learn_whitening(variant, cache_dir)(vectors)
        by_path = dict(zip(paths, vectors, strict=True))
        metrics = {
            name: score(eval_set, by_path, variant.query_expansion)
            for name, eval_set in sets.items()
        }
        rows.append(
            Row(
                variant.label,
                metrics["tuxpaint"][f"map@{TOP_K}"],
                metrics["copydetect-mild"]["recall@1"],
                metrics["copydetect-hard"]["recall@1"],
                1 / seconds,
            )
        )
    return rows


def table(rows: list[Row]) -> Table:
    grid = Table(title="Descriptor variants (exact search over the development sets)")
    # Batch-1 timings of passes that may come from earlier runs: indicative only.
    for name in ("variant", "Tux mAP@10", "mild R@1", "hard R@1", "images/s (indicative)"):
        grid.add_column(name, justify="left" if name == "variant" else "right")
    for row in rows:
        grid.add_row(
            row.variant,
            f"{row.tuxpaint_map:.3f}",
            f"{row.mild_recall_at_1:.3f}",
            f"{row.hard_recall_at_1:.3f}",
            f"{row.images_per_s:.0f}",
        )
    return grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, help="merge the figures into this JSON file")
    arguments = parser.parse_args()
    rows = run(VARIANTS, load_settings().cache_dir)
    console.print(table(rows))
    if arguments.json:
        merge_json(arguments.json, {"descriptor_variants": [vars(row) for row in rows]})


if __name__ == "__main__":
    main()
