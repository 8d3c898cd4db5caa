"""Local-feature matching for verification: the product's matcher beside OpenCV's brute-force
matcher (what it replaced), on the same features of real copies and of look-alikes.

Pairs come from the copy-detection development set: each mild and hard copy with its original,
and each original with the next one in the gallery (a wrong pair, as most pairs that
`query duplicates` checks are). Both matchers feed the same RANSAC; the table gives the time
per pair (matching and RANSAC, direct then mirrored as `inliers` runs them) at the settings of
searches and of duplicates, and how often the two agree on the verdict. Then the product's
matcher on two threads, as `query duplicates` checks pairs: with BLAS's own threads as they
are, and limited to one as `query duplicates` limits them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from rich.console import Console
from rich.table import Table
from threadpoolctl import threadpool_limits

from bench.measure import merge_json
from ris.datasets import dataset_path
from ris.duplicates.groups import FEATURE_COUNT, FEATURE_SIDE
from ris.search import verify
from ris.search.verify import MAX_FEATURES, MAX_SIDE, MIN_INLIERS, LocalFeatures, local_features

console = Console(highlight=False, width=140)
SETTINGS = {"search": (MAX_SIDE, MAX_FEATURES), "duplicates": (FEATURE_SIDE, FEATURE_COUNT)}
Matcher = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def opencv_matches(query: np.ndarray, candidate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The matcher before: OpenCV's knnMatch, the ratio test and one match per candidate
    feature over its DMatch objects in Python."""
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(query, candidate, k=2)
    best: dict[int, cv2.DMatch] = {}
    for pair in pairs:
        if len(pair) == 2 and pair[0].distance < verify.RATIO * pair[1].distance:
            match = pair[0]
            if match.trainIdx not in best or match.distance < best[match.trainIdx].distance:
                best[match.trainIdx] = match
    kept = list(best.values())
    return (
        np.array([match.queryIdx for match in kept], dtype=np.int64),
        np.array([match.trainIdx for match in kept], dtype=np.int64),
    )


def real_pairs(per_strength: int) -> list[tuple[Path, Path, bool]]:
    """(copy or original, original, is a true copy) from the copy-detection set."""
    gallery = dataset_path("copydetect-mild") / "gallery"
    pairs = []
    for strength in ("mild", "hard"):
        folder = dataset_path(f"copydetect-{strength}")
        truth = json.loads((folder / "truth.json").read_text())
        for query, original in sorted(truth.items())[:per_strength]:
            pairs.append((folder / "queries" / query, gallery / original, True))
    originals = sorted(gallery.iterdir())[: 2 * per_strength + 1]
    neighbours = zip(originals, originals[1:], strict=False)
    pairs += [(first, second, False) for first, second in neighbours]
    return pairs


def timed(
    matcher: Matcher, features: list[tuple[LocalFeatures, LocalFeatures]]
) -> tuple[float, list[int]]:
    """(ms per pair, inliers of each pair) with `matcher` inside the product's `inliers`."""
    product = verify._ratio_matches
    verify._ratio_matches = matcher  # type: ignore[assignment]
    try:
        started = time.perf_counter()
        counts = [verify.inliers(first, second) for first, second in features]
        return (time.perf_counter() - started) / len(features) * 1000, counts
    finally:
        verify._ratio_matches = product


def on_two_threads(
    features: list[tuple[LocalFeatures, LocalFeatures]], blas_threads: int | None
) -> float:
    """Wall ms per pair checking the pairs on two threads, BLAS's threads limited to
    `blas_threads` (None: as they are)."""
    limit = threadpool_limits(blas_threads, user_api="blas") if blas_threads else None
    with ThreadPoolExecutor(2) as pool, limit or contextlib.nullcontext():
        started = time.perf_counter()
        list(pool.map(lambda pair: verify.inliers(*pair), features))
        return (time.perf_counter() - started) / len(features) * 1000


def measure(per_strength: int) -> list[dict]:
    pairs = real_pairs(per_strength)
    cv2.setRNGSeed(0)
    rows = []
    for name, (side, count) in SETTINGS.items():
        files = {path for first, second, _ in pairs for path in (first, second)}
        features = {path: local_features(str(path), 10**9, side, count) for path in files}
        pair_features = [(features[first], features[second]) for first, second, _ in pairs]
        truth = np.array([is_copy for _, _, is_copy in pairs])
        before_ms, before = timed(opencv_matches, pair_features)
        after_ms, after = timed(verify._ratio_matches, pair_features)
        before_ok, after_ok = np.array(before) >= MIN_INLIERS, np.array(after) >= MIN_INLIERS
        rows.append(
            {
                "settings": f"{name} ({side} px, {count} features)",
                "pairs": len(pairs),
                "opencv_ms_per_pair": round(before_ms, 2),
                "product_ms_per_pair": round(after_ms, 2),
                "speedup": round(before_ms / after_ms, 2),
                "same_verdict": float(np.mean(before_ok == after_ok)),
                "copies_verified_opencv": float(before_ok[truth].mean()),
                "copies_verified_product": float(after_ok[truth].mean()),
                "wrong_verified_opencv": int(before_ok[~truth].sum()),
                "wrong_verified_product": int(after_ok[~truth].sum()),
                "two_threads_ms_blas_as_is": round(on_two_threads(pair_features, None), 2),
                "two_threads_ms_one_blas": round(on_two_threads(pair_features, 1), 2),
            }
        )
    return rows


def show(rows: list[dict]) -> None:
    table = Table(title="verification matching: OpenCV's matcher against the product's")
    for key in rows[0]:
        table.add_column(key.replace("_", " "), justify="left" if key == "settings" else "right")
    for row in rows:
        table.add_row(*(str(value) for value in row.values()))
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100, help="copies per strength")
    parser.add_argument("--json", type=Path, help="merge the figures into this JSON file")
    arguments = parser.parse_args()
    rows = measure(arguments.pairs)
    show(rows)
    if arguments.json:
        merge_json(arguments.json, {"verification_matching": rows})


if __name__ == "__main__":
    main()
