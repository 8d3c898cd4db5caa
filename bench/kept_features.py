"""Searches with kept local features: recall and latency by how many hits are checked.

Each copy-detection set's gallery is indexed by real workers (Milvus Lite), then every query is
searched through the product's `ImageSearch`, once per configuration, side by side in one run:

- nothing kept (RIS_FEATURE_CACHE_GB=0, as before features were kept): the 10 nearest hits are
  read and checked;
- every gallery picture's features kept by `query features` first, then 10 hits checked, and
  10 plus RIS_VERIFY_KEPT_TOP more (the default 100) when none of the 10 verifies;
- the default from an empty cache, filled by the searches as they read hits (a new service);
- with RIS_VERIFY_CENTRE on: a search whose hits verify nothing searches its query's centre;
- with RIS_VERIFY_PASTED off (it is on by default): a search whose hits verify nothing does not
  search the pictures pasted inside its query;
- with RIS_VERIFY_WEAK off (it is on by default): hits on which 4-9 features agree are not
  compared with the query pixel for pixel.

For each: recall@1 and @10, queries whose first hit was verified but is not their original,
the query median and p90, and the verification time of the queries whose hits were checked and
none verified (what a search for a picture with no copy in the collection costs; a query whose
top hit is its own picture, re-encoded, is not checked at all). copydetect is where the
verification settings were chosen; the augly sets are held out, the augly2 sets from
changes made after the augly sets' misses were looked at, and the augly3 sets from the search
of pasted pictures, designed with both earlier families' mild misses in view.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.measure import merge_json
from ris.datasets import dataset_path
from ris.evaluation.eval_sets import EvalSet, read_eval_set
from ris.evaluation.metrics import MetricMeans
from ris.evaluation.run import embedded_services, ingest_folder, scored_queries
from ris.index.milvus import open_index
from ris.search.keep_features import keep_search_features
from ris.settings import Settings, load_settings

console = Console(highlight=False, width=160)
SETS = (
    "copydetect-hard",
    "copydetect-mild",
    "augly-hard",
    "augly-mild",
    "augly2-hard",
    "augly2-mild",
    "augly3-hard",
    "augly3-mild",
    "augly4-hard",
    "augly4-mild",
    "augly5-hard",
    "augly5-mild",
)
TOP_K = 10


@dataclass(frozen=True)
class Configuration:
    label: str
    kept_top: int  # RIS_VERIFY_KEPT_TOP
    cache: str  # "off", "kept" (by `query features`) or "empty" (filled by the searches)
    centre: bool = False  # RIS_VERIFY_CENTRE
    pasted: bool = True  # RIS_VERIFY_PASTED
    weak: bool = True  # RIS_VERIFY_WEAK
    frames: bool = True  # RIS_VERIFY_FRAMES
    region: bool = True  # RIS_VERIFY_REGION
    pasted_nearest: bool = True  # RIS_PASTED_NEAREST


CONFIGURATIONS = (
    Configuration("nothing kept, 10 checked", 0, "off"),
    Configuration("kept, 10 checked", 0, "kept"),
    Configuration("kept, 10 + 100 checked (default)", 100, "kept"),
    Configuration("kept, 10 + 100 checked, then the centre", 100, "kept", centre=True),
    Configuration("empty cache, 10 + 100 checked", 100, "empty"),
    Configuration("kept, 10 + 100 checked, no pasted pictures", 100, "kept", pasted=False),
    Configuration("kept, 10 + 100 checked, no weak matches", 100, "kept", weak=False),
    Configuration("kept, 10 + 100 checked, no frames compared", 100, "kept", frames=False),
    Configuration(
        "kept, 10 + 100 checked, no pasted picture's nearest", 100, "kept", pasted_nearest=False
    ),
    Configuration("kept, 10 + 100 checked, no weak hits' regions", 100, "kept", region=False),
)


@dataclass
class Row:
    set: str
    configuration: str
    recall_at_1: float
    recall_at_10: float
    wrong_verified_first: int
    queries: int
    median_ms: float
    p90_ms: float
    unverified: int  # queries whose hits were checked and none verified
    unverified_verify_median_ms: float


def _searched(eval_set: EvalSet, settings: Settings, index: Any, label: str) -> Row:
    means = MetricMeans()
    totals: list[float] = []
    unverified: list[float] = []
    wrong = 0
    for scored in scored_queries(eval_set, settings, index, TOP_K):
        means.add(**scored.metrics)
        if scored.response is None:
            continue
        results = scored.response.results
        totals.append(scored.response.timings_ms["total"])
        checked = any(result.inliers is not None for result in results)
        if checked and not any(result.verified for result in results):
            unverified.append(scored.response.timings_ms["verify"])
        wrong += bool(
            results and results[0].verified and results[0].path not in scored.query.relevant
        )
    metrics = means.means()
    return Row(
        set=eval_set.root.name,
        configuration=label,
        recall_at_1=metrics["recall@1"],
        recall_at_10=metrics["recall@10"],
        wrong_verified_first=wrong,
        queries=len(eval_set.queries),
        median_ms=statistics.median(totals),
        p90_ms=statistics.quantiles(totals, n=10)[-1],
        unverified=len(unverified),
        unverified_verify_median_ms=statistics.median(unverified) if unverified else 0.0,
    )


def measure_set(
    name: str, settings: Settings, configurations: Sequence[Configuration] = CONFIGURATIONS
) -> tuple[list[Row], dict[str, float]]:
    eval_set = read_eval_set(str(dataset_path(name, settings.cache_dir)))
    rows = []
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ris-kept-")))
        served = stack.enter_context(embedded_services(settings, work))
        served = served.model_copy(update={"collection": "kept_features", "queue": "kept"})
        index = open_index(served)
        stack.callback(index.drop)
        indexed, _, _ = ingest_folder(eval_set.gallery_root, served, 1, work)
        kept_dir = work / "kept"
        started = time.perf_counter()
        kept = keep_search_features(
            served.model_copy(update={"feature_cache_dir": kept_dir}), index
        )
        keep = {
            "images": indexed,
            "images_per_s": kept.extracted / (time.perf_counter() - started),
            "bytes_per_image": kept.cache_bytes / max(1, kept.rows),
        }
        for number, configuration in enumerate(configurations):
            update: dict[str, Any] = {
                "verify_kept_top": configuration.kept_top,
                "verify_centre": configuration.centre,
                "verify_pasted": configuration.pasted,
                "verify_weak": configuration.weak,
                "verify_frames": configuration.frames,
                "verify_region": configuration.region,
                "pasted_nearest": configuration.pasted_nearest,
            }
            if configuration.cache == "off":
                update["feature_cache_gb"] = 0
            else:
                fresh = work / f"empty-{number}"
                update["feature_cache_dir"] = kept_dir if configuration.cache == "kept" else fresh
            console.print(f"  {name}: {configuration.label} ...")
            rows.append(
                _searched(eval_set, served.model_copy(update=update), index, configuration.label)
            )
    return rows, keep


def report(rows: list[Row], keeping: dict[str, dict[str, float]]) -> None:
    table = Table(
        title=f"searches by hits checked (top {TOP_K}; copydetect tuned on, augly held out)",
        title_justify="left",
    )
    for column in (
        "set",
        "configuration",
        "R@1",
        "R@10",
        "wrong verified first",
        "median ms",
        "p90 ms",
        "checked, none verified",
        "their verify ms",
    ):
        table.add_column(column, justify="left" if column in {"set", "configuration"} else "right")
    for row in rows:
        table.add_row(
            row.set,
            row.configuration,
            f"{row.recall_at_1:.3f}",
            f"{row.recall_at_10:.3f}",
            f"{row.wrong_verified_first}",
            f"{row.median_ms:.1f}",
            f"{row.p90_ms:.1f}",
            f"{row.unverified} of {row.queries}",
            f"{row.unverified_verify_median_ms:.1f}",
        )
    console.print(table)
    for name, figures in keeping.items():
        console.print(
            f"`query features` on {name}: {figures['images']} images at "
            f"{figures['images_per_s']:.0f} images/s, {figures['bytes_per_image'] / 1000:.0f} KB "
            "an image on disk"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    parser.add_argument(
        "--configurations",
        nargs="+",
        type=int,
        default=list(range(len(CONFIGURATIONS))),
        help="which configurations to measure, by number from 0: "
        + "; ".join(f"{n}: {c.label}" for n, c in enumerate(CONFIGURATIONS)),
    )
    parser.add_argument("--json", type=Path, help="merge the figures into this JSON file")
    arguments = parser.parse_args()
    settings = load_settings()
    rows: list[Row] = []
    keeping: dict[str, dict[str, float]] = {}
    chosen = [CONFIGURATIONS[number] for number in arguments.configurations]
    for name in arguments.sets:
        found, keeping[name] = measure_set(name, settings, chosen)
        rows.extend(found)
    report(rows, keeping)
    if arguments.json:
        merge_json(
            arguments.json,
            {"kept_features": {"searches": [asdict(row) for row in rows], "keeping": keeping}},
        )


if __name__ == "__main__":
    main()
