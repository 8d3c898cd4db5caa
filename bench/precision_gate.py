"""`make bench-quality`, second part: the quality gate of every runtime and precision this host
runs, on the development sets.

A configuration passes if its descriptors keep cosine to ONNX Runtime f32 >= 0.995 at the median
and >= 0.98 on every image of the sets, and its `query eval` figures (copy recall@1 mild and
hard, class mAP@10) stay within 0.01 of ONNX Runtime f32's, the default model searching as the
product does (verification on).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from bench.measure import merge_json
from ris.convert.export import ensure_onnx_model
from ris.datasets import dataset_path
from ris.embedding.imaging import load_image
from ris.embedding.models import get_model_spec
from ris.embedding.openvino_session import openvino_capabilities
from ris.embedding.runtime import (
    GATE,
    REFERENCE,
    Candidate,
    cosine_rows,
    host_candidates,
    make_embedder,
)
from ris.evaluation.eval_sets import read_eval_set
from ris.evaluation.run import evaluate
from ris.settings import Settings, load_settings

console = Console(highlight=False, width=160)
METRICS = (
    ("copydetect-mild", "recall@1", "mild R@1"),
    ("copydetect-hard", "recall@1", "hard R@1"),
    ("tuxpaint", "map@10", "Tux mAP@10"),
)
EVAL_TOLERANCE = 0.01


def development_images(settings: Settings) -> list[Path]:
    """Every gallery and query image of the three sets, once each."""
    files: set[Path] = set()
    for name in {name for name, _, _ in METRICS}:
        root = dataset_path(name, settings.cache_dir)
        files |= {path.resolve() for path in root.rglob("*") if path.suffix in (".jpg", ".png")}
    return sorted(files)


def agreement(settings: Settings, candidates: list[Candidate]) -> dict[str, dict[str, float]]:
    """Cosine of each candidate's descriptors to ONNX Runtime f32's, over every image."""
    spec = get_model_spec(settings.model)
    model_path = ensure_onnx_model(settings.model, settings.cache_dir)
    paths = development_images(settings)
    console.print(f"descriptors of {len(paths)} development images per runtime ...")
    images = np.stack([load_image(str(path), spec.input_size, 10**9) for path in paths])
    threads = settings.resolved_inference_threads
    reference = make_embedder(REFERENCE, model_path, threads, 16)(images)
    rows = {}
    for candidate in candidates:
        cosines = cosine_rows(reference, make_embedder(candidate, model_path, threads, 16)(images))
        rows[candidate.label] = {
            "images": len(paths),
            "cos_min": float(cosines.min()),
            "cos_median": float(np.median(cosines)),
        }
    return rows


def eval_figures(settings: Settings, candidate: Candidate) -> dict[str, float]:
    forced = settings.model_copy(
        update={
            "runtime": candidate.runtime,
            "precision": candidate.precision,
            # Measured here to decide whether it may pass at all.
            "ungated_precision": True,
        }
    )
    figures = {}
    for name, metric, _ in METRICS:
        console.print(f"{candidate.label} on {name} ...")
        report = evaluate(
            read_eval_set(dataset_path(name, settings.cache_dir)),
            forced,
            top_k=10,
            workers=1,
            embedded=True,
        )
        figures[name] = report.as_dict()["metrics"][metric]
    return figures


def gate(settings: Settings) -> dict[str, dict[str, Any]]:
    candidates = host_candidates(openvino_capabilities())
    rows: dict[str, dict[str, Any]] = agreement(settings, candidates)
    for candidate in candidates:
        rows[candidate.label]["eval"] = eval_figures(settings, candidate)
    reference = rows[REFERENCE.label]["eval"]
    for row in rows.values():
        row["eval_within_tolerance"] = all(
            abs(row["eval"][name] - reference[name]) <= EVAL_TOLERANCE for name in reference
        )
        row["passes"] = (
            row["cos_median"] >= GATE.median
            and row["cos_min"] >= GATE.minimum
            and row["eval_within_tolerance"]
        )
    return rows


def table(rows: dict[str, dict[str, Any]]) -> Table:
    grid = Table(title="Quality gate: every runtime and precision on the development sets")
    for column in ("runtime", "images", "cosine min", "cosine median"):
        grid.add_column(column, justify="left" if column == "runtime" else "right")
    for _, _, label in METRICS:
        grid.add_column(label, justify="right")
    grid.add_column("passes", justify="center")
    for label, row in rows.items():
        grid.add_row(
            label,
            str(row["images"]),
            f"{row['cos_min']:.4f}",
            f"{row['cos_median']:.4f}",
            *[f"{row['eval'][name]:.3f}" for name, _, _ in METRICS],
            "yes" if row["passes"] else "NO",
        )
    return grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, help="merge the figures into this JSON file")
    arguments = parser.parse_args()
    rows = gate(load_settings())
    console.print(table(rows))
    if arguments.json:
        merge_json(arguments.json, {"precision_gate": rows})
        console.print(f"figures merged into {arguments.json}")


if __name__ == "__main__":
    main()
