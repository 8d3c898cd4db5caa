"""Candidate recall for small crops: ways to index more than one vector per image, by exact search.

Verification can only promote an original that the vector search returns among the hits it
checks, so what decides hard-copy recall is whether the original is a candidate at all. Each
option indexes some regions of every gallery image as extra rows that point at their image (an
image scores the best of its rows); queries are embedded as the product embeds them. Regions
come either from re-embedding each crop with the default model, or from pooling regions of one
feature map per backbone (R-MAC style: one forward pass, any number of regions). Recall@100 is
what checking 100 hits instead of 10 would reach. The cost of each option: rows and bytes per
image in the index, and embedding time per image on this machine.

The augly sets are held out (nothing was chosen on them); copydetect is where the default was
tuned. Vectors are cached under RIS_CACHE_DIR/candidates/ (a rerun only scores).
"""

from __future__ import annotations

import argparse
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from rich.console import Console
from rich.table import Table

from bench.descriptor_sweep import feature_map_session, pool
from bench.measure import merge_json
from ris.convert.export import ensure_onnx_model
from ris.datasets import dataset_path
from ris.embedding.imaging import decoding, load_image, open_image, remove_frame, upright_rgb
from ris.embedding.models import BACKBONES, DEFAULT_MODEL, get_model_spec
from ris.embedding.session import OnnxEmbedder, l2_normalise
from ris.evaluation.eval_sets import EvalSet, read_eval_set
from ris.settings import Settings, load_settings

console = Console(highlight=False, width=200)
SETS = ("augly-hard", "augly-mild", "copydetect-hard", "copydetect-mild")
SIZE = 224
TIMED_IMAGES = 20
MAX_PIXELS = 100_000_000
Box = tuple[float, float, float, float]  # left, top, right, bottom as fractions of the image


def grid(side: float, steps: int) -> list[Box]:
    """steps x steps square regions of `side`, evenly spaced from one edge to the other."""
    starts = [i * (1 - side) / (steps - 1) for i in range(steps)]
    return [(x, y, x + side, y + side) for y in starts for x in starts]


WHOLE: list[Box] = [(0.0, 0.0, 1.0, 1.0)]
TODAY = "whole image"
SCHEMES: dict[str, list[Box]] = {
    TODAY: WHOLE,
    "+ 2x2 halves": WHOLE + grid(1 / 2, 2),
    "+ 3x3 halves": WHOLE + grid(1 / 2, 3),
    "+ 3x3 halves + 4x4 thirds": WHOLE + grid(1 / 2, 3) + grid(1 / 3, 4),
}
BOXES = sorted({box for boxes in SCHEMES.values() for box in boxes})
# Where region vectors come from: the default model on each crop, or one feature map per
# backbone at this input size.
SOURCES = ("crops", "map 224", "map 448")


@dataclass
class Option:
    label: str
    rows_per_image: int
    bytes_per_image: int
    embed_ms_per_image: float
    recall: dict[str, dict[str, float]]  # set -> {"r@1", "r@10", "r@100"}


def _cells(low: float, high: float, cells: int) -> slice:
    first = int(round(low * cells))
    return slice(first, max(first + 1, int(round(high * cells))))


class RegionVectors:
    """Every BOXES region vector of a gallery image, per source, computed once and cached."""

    def __init__(self, settings: Settings):
        self.cache = settings.cache_dir / "candidates"
        self.cache.mkdir(parents=True, exist_ok=True)
        model = ensure_onnx_model(DEFAULT_MODEL, settings.cache_dir)
        self.embedder = OnnxEmbedder(str(model), threads=2, model_batch_size=8)
        self.maps = [
            feature_map_session(BACKBONES[name], settings.cache_dir)
            for name in ("efficientnet-lite0", "mobilenet-v2")
        ]

    def of(self, path: str, source: str) -> np.ndarray:
        digest = hashlib.sha1(Path(path).read_bytes()).hexdigest()
        stored = self.cache / f"{source.replace(' ', '')}-{digest}.npy"
        if stored.exists():
            return np.load(stored).astype(np.float32)
        vectors = self.compute(path, source)
        np.save(stored, vectors.astype(np.float16))
        return vectors

    def compute(self, path: str, source: str) -> np.ndarray:
        return self._crops(path) if source == "crops" else self._pooled(path, int(source[4:]))

    def _upright(self, path: str, side: int) -> Image.Image:
        with open_image(path, MAX_PIXELS) as image, decoding():
            return remove_frame(upright_rgb(image, path, side))

    def _crops(self, path: str) -> np.ndarray:
        upright = self._upright(path, SIZE * 3)
        width, height = upright.size
        crops = [
            np.asarray(
                upright.crop(
                    (round(x0 * width), round(y0 * height), round(x1 * width), round(y1 * height))
                ).resize((SIZE, SIZE), Image.Resampling.BILINEAR),
                np.uint8,
            )
            for x0, y0, x1, y1 in BOXES
        ]
        return l2_normalise(self.embedder(np.stack(crops)))

    def _pooled(self, path: str, size: int) -> np.ndarray:
        upright = self._upright(path, size * 3 // 4)
        pixels = np.asarray(upright.resize((size, size), Image.Resampling.BILINEAR), np.uint8)
        maps = [session.run(None, {"images": pixels[None]})[0][0] for session in self.maps]
        rows = []
        for x0, y0, x1, y1 in BOXES:
            parts = []
            for feature_map in maps:  # channels x height x width
                block = feature_map[
                    :, _cells(y0, y1, feature_map.shape[1]), _cells(x0, x1, feature_map.shape[2])
                ]
                parts.append(l2_normalise(pool(block, "gem")[None])[0])
            rows.append(np.concatenate(parts))
        return l2_normalise(np.stack(rows))

    def ms_per_image(self, source: str, paths: list[str]) -> float:
        """Median time to embed every BOXES region of one image (never from the cache)."""
        seconds = []
        for path in paths[:TIMED_IMAGES]:
            started = time.perf_counter()
            self.compute(path, source)
            seconds.append(time.perf_counter() - started)
        return float(np.median(seconds)) * 1000


def query_vectors(vectors: RegionVectors, eval_set: EvalSet) -> np.ndarray:
    """The queries as the product embeds them (its decoder, frame removal, the default model)."""
    images = [load_image(q.path, SIZE, MAX_PIXELS, frame_removal=True) for q in eval_set.queries]
    return l2_normalise(
        np.concatenate(
            [vectors.embedder(np.stack(images[i : i + 32])) for i in range(0, len(images), 32)]
        )
    )


def recall(
    queries: np.ndarray, gallery: np.ndarray, eval_set: EvalSet, columns: list[int]
) -> dict[str, float]:
    """Recall@1/10/100 when each gallery image scores the best of its `columns` rows."""
    position = {path: i for i, path in enumerate(eval_set.gallery)}
    scores = np.einsum("qd,grd->qgr", queries, gallery[:, columns, :]).max(axis=2)
    ranks = []
    for row, query in zip(scores, eval_set.queries, strict=True):
        best = max(row[position[path]] for path in query.relevant)
        ranks.append(int((row > best).sum()))
    found = np.asarray(ranks)
    return {f"r@{k}": float((found < k).mean()) for k in (1, 10, 100)}


def measure(settings: Settings, sets: list[str]) -> list[Option]:
    vectors = RegionVectors(settings)
    dim = get_model_spec(DEFAULT_MODEL).dim
    results: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
    timing_paths: list[str] = []
    for name in sets:
        eval_set = read_eval_set(dataset_path(name, settings.cache_dir))
        timing_paths = timing_paths or eval_set.gallery[:: max(1, len(eval_set.gallery) // 20)]
        queries = query_vectors(vectors, eval_set)
        for source in SOURCES:
            console.print(f"{name}: {len(eval_set.gallery)} gallery images, regions by {source}")
            gallery = np.stack([vectors.of(path, source) for path in eval_set.gallery])
            for scheme, boxes in SCHEMES.items():
                columns = [BOXES.index(box) for box in boxes]
                results.setdefault((source, scheme), {})[name] = recall(
                    queries, gallery, eval_set, columns
                )
    all_regions_ms = {source: vectors.ms_per_image(source, timing_paths) for source in SOURCES}
    options = []
    for (source, scheme), by_set in results.items():
        regions = len(SCHEMES[scheme])
        # A crop costs a forward pass each; a feature map pools any number of regions at once.
        ms = all_regions_ms[source] * (regions / len(BOXES) if source == "crops" else 1)
        label = TODAY if (source, scheme) == ("crops", TODAY) else f"{scheme}, {source}"
        options.append(Option(label, regions, regions * dim * 4, ms, by_set))
    return options


def table(options: list[Option], sets: list[str]) -> Table:
    grid_ = Table(title="Candidate recall by exact search: the original among the nearest rows")
    grid_.add_column("option", no_wrap=True)
    for header in ("rows/img", "bytes/img", "embed ms/img"):
        grid_.add_column(header, justify="right")
    for name in sets:
        for k in (1, 10, 100) if name.endswith("hard") else (1,):
            grid_.add_column(f"{name} R@{k}", justify="right")
    for option in options:
        cells = [
            f"{option.recall[name][f'r@{k}']:.3f}"
            for name in sets
            for k in ((1, 10, 100) if name.endswith("hard") else (1,))
        ]
        grid_.add_row(
            option.label,
            str(option.rows_per_image),
            f"{option.bytes_per_image:,}",
            f"{option.embed_ms_per_image:.0f}",
            *cells,
        )
    return grid_


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    parser.add_argument("--json", type=Path, help="merge the figures into this JSON file")
    arguments = parser.parse_args()
    options = measure(load_settings(), arguments.sets)
    console.print(table(options, arguments.sets))
    if arguments.json:
        merge_json(arguments.json, {"candidate_options": [vars(o) for o in options]})


if __name__ == "__main__":
    main()
