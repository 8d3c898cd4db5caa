"""`make bench-quality`: every model through `query eval` on the development sets, one table.

The copydetect sets are where settings were chosen; the augly sets (other originals, edits made
by AugLy) are held out: no setting was chosen on them, so their columns are the honest ones.

Each model is measured as the product searches (spatial verification of the 10 nearest hits);
the plain baseline and the default model also without verification, so the table shows what
the descriptor and the verification each bring.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.measure import merge_json
from ris.convert.export import ensure_onnx_model
from ris.datasets import dataset_path
from ris.embedding.models import DEFAULT_MODEL, MODELS
from ris.evaluation.eval_sets import read_eval_set
from ris.evaluation.run import evaluate
from ris.settings import Settings, load_settings

console = Console(highlight=False, width=160)
# The set each column comes from, and the metric it shows.
COLUMNS = (
    ("tuxpaint", "map@10", "Tux mAP@10"),
    ("tuxpaint", "tutorial_map@10", "Tux tutorial mAP@10"),
    ("tuxpaint", "precision@1", "Tux P@1"),
    ("copydetect-mild", "recall@1", "mild R@1"),
    ("copydetect-hard", "recall@1", "hard R@1"),
    ("copydetect-hard", "mrr", "hard MRR"),
    ("augly-mild", "recall@1", "held-out mild R@1"),
    ("augly-hard", "recall@1", "held-out hard R@1"),
    ("augly-hard", "recall@10", "held-out hard R@10"),
)
# Ingestion is timed on the 1,136-image copy-detection gallery, indexed once per strength.
SPEED_SETS = ("copydetect-mild", "copydetect-hard")
BASELINE = "efficientnet-lite0"
UNVERIFIED = "no verification"


def row_label(model: str, verify_top: int) -> str:
    return f"{model}, {UNVERIFIED}" if verify_top == 0 else model


def rows(models: list[str], verify_top: int) -> list[tuple[str, int]]:
    """(model, verify_top) per table row: the baseline and the default also unverified."""
    unverified = [(model, 0) for model in (BASELINE, DEFAULT_MODEL) if model in models]
    return unverified + [(model, verify_top) for model in models]


def measure(models: list[str], settings: Settings) -> dict[str, dict[str, Any]]:
    """{row label: {dataset: report}} for every row and development set, on embedded services."""
    sets = {name: read_eval_set(dataset_path(name, settings.cache_dir)) for name, *_ in COLUMNS}
    results: dict[str, dict[str, Any]] = {}
    for model, verify_top in rows(models, settings.verify_top):
        label = row_label(model, verify_top)
        row_settings = settings.model_copy(update={"model": model, "verify_top": verify_top})
        ensure_onnx_model(model, settings.cache_dir)
        results[label] = {}
        for name, eval_set in sets.items():
            console.print(f"{label} on {name} ...")
            report = evaluate(eval_set, row_settings, top_k=10, workers=1, embedded=True)
            results[label][name] = report.as_dict()
    return results


def ingest_rate(reports: dict[str, Any]) -> float:
    """Mean ingestion images/s over the runs on the large gallery."""
    return sum(reports[name]["ingest_images_per_s"] for name in SPEED_SETS) / len(SPEED_SETS)


def table(results: dict[str, dict[str, Any]]) -> Table:
    grid = Table(title="Retrieval quality against ingestion speed (query eval, top 10)")
    grid.add_column("model", no_wrap=True)
    for _, _, label in COLUMNS:
        grid.add_column(label, justify="right")
    grid.add_column("dim", justify="right")
    grid.add_column("images/s", justify="right")
    grid.add_column("speed", justify="right")
    plain = row_label(BASELINE, 0)
    baseline = ingest_rate(results[plain]) if plain in results else None
    for label, reports in results.items():
        speed = ingest_rate(reports)
        model = reports[COLUMNS[0][0]]["model"]
        grid.add_row(
            label,
            *[f"{reports[name]['metrics'][metric]:.3f}" for name, metric, _ in COLUMNS],
            str(MODELS[model].dim),
            f"{speed:.0f}",
            f"{speed / baseline:.2f}" if baseline else "-",
        )
    return grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, help="merge the figures into this JSON file")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    arguments = parser.parse_args()
    results = measure(arguments.models, load_settings())
    console.print(table(results))
    if arguments.json:
        merge_json(arguments.json, {"quality": results})
        console.print(f"figures merged into {arguments.json}")


if __name__ == "__main__":
    main()
