"""`make bench`, scaling: images/s against 1-16 worker processes, then the Redis/Milvus ceiling."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.jobwatch import job_record_bytes
from bench.measure import merge_json
from bench.rig import BATCH_SIZE, Fleet, Rig, Run
from ris.dev.services import LocalMilvusServer, LocalRedis
from ris.settings import load_settings

console = Console(highlight=False, width=110)
# A GPU-like hold per batch. 16 workers then ask for 16 / 2 s = 8 tasks/s (512 rows/s), a small
# share of the ceiling the saturation run measures for one Redis and one Milvus on 2 cores.
HOLD_SECONDS = 2.0
BATCHES_PER_WORKER = 6
SCALING_WORKERS = (1, 2, 4, 8, 16)
# Saturation: a token hold (0 turns the real model on), more workers until the rate stops rising.
SATURATION_HOLD_SECONDS = 0.001
SATURATION_WORKERS = (1, 2, 4, 8)
SATURATION_BATCHES = 200
# A job record past Redis's 512-entry intset, encoded as a job of a billion images is.
RECORD_BATCHES = 10_000
PARTS = ("workers", "redis", "milvus")


def _grow_and_run(
    rig: Rig, hold: float, name: str, workers: tuple[int, ...], batches: Callable[[int], int]
) -> list[Run]:
    """One job per worker count, on a fleet grown between jobs; each run is printed."""
    fleet = Fleet(rig.environment(hold), rig.work, name)
    runs = []
    try:
        for count in workers:
            fleet.grow(count)
            run = rig.run_job(fleet, batches(count))
            runs.append(run)
            console.print(
                f"  {count:>2} workers: {run.images_per_s:7.1f} images/s, "
                f"{run.tasks_per_s:6.1f} tasks/s, machine {run.machine_busy:.0%} busy"
            )
    finally:
        fleet.stop()
    return runs


def measure_scaling(rig: Rig, workers: tuple[int, ...], hold: float) -> list[Run]:
    return _grow_and_run(rig, hold, "hold", workers, lambda count: count * BATCHES_PER_WORKER)


def measure_saturation(rig: Rig, workers: tuple[int, ...], batches: int) -> list[Run]:
    return _grow_and_run(rig, SATURATION_HOLD_SECONDS, "flat", workers, lambda _: batches)


def bottleneck(run: Run) -> str:
    """The part that hit the ceiling: Redis at a full core (it is single-threaded), else the
    largest CPU user of a machine that has no CPU left."""
    if run.cores["redis"] >= 0.9:
        return f"redis ({run.cores['redis']:.2f} cores: its one thread is full)"
    part = max(PARTS, key=lambda name: run.cores[name])
    if run.machine_busy >= 0.9:
        shares = ", ".join(f"{name} {cores:.2f}" for name, cores in sorted(run.cores.items()))
        return f"{part}: the machine's CPU is {run.machine_busy:.0%} busy (cores: {shares})"
    return f"none saturated (machine {run.machine_busy:.0%} busy)"


def figures_of(
    scaling: list[Run], saturation: list[Run], rig: Rig, record: dict[str, float], hold: float
) -> dict[str, Any]:
    base = scaling[0].images_per_s
    efficiency = {str(run.workers): run.images_per_s / (run.workers * base) for run in scaling}
    top = max(saturation, key=lambda run: run.tasks_per_s)
    queue = rig.queue_sample
    runs = scaling + saturation
    indexed_rows = sum(run.batches * BATCH_SIZE for run in runs)
    return {
        "scaling_hold_seconds": hold,
        "scaling_batch_size": BATCH_SIZE,
        "scaling_ips": {str(run.workers): run.images_per_s for run in scaling},
        "scaling_efficiency": efficiency,
        "scaling_efficiency_8": efficiency.get("8"),
        # What 16 held workers ask of Redis and Milvus, as a share of the measured ceiling.
        "scaling_demand_16": (16 / hold) / top.tasks_per_s,
        "scaling_runs": [run.as_dict() for run in scaling],
        "saturation_runs": [run.as_dict() for run in saturation],
        "ceiling_tasks_per_s": top.tasks_per_s,
        "ceiling_rows_per_s": top.images_per_s,
        "ceiling_workers": top.workers,
        "ceiling_bottleneck": bottleneck(top),
        "ceiling_cores": top.cores,
        "ceiling_cpu_ms_per_task": {
            part: 1000 * top.cores[part] / top.tasks_per_s for part in PARTS
        },
        # Each job's rows are sealed by its flush and indexed after it (HNSW, on this machine).
        "index_rows_per_s": indexed_rows / sum(run.index_seconds for run in runs),
        "index_milvus_cpu_ms_per_row": 1000
        * sum(run.index_milvus_cpu_seconds for run in runs)
        / indexed_rows,
        "redis_queue_length_sampled": queue.length,
        "redis_queue_bytes_per_message": queue.bytes_per_message,
        "redis_message_bytes": queue.message_bytes,
        "redis_message_paths": queue.message_paths,
        "redis_message_path_chars": queue.message_path_chars,
        "redis_job_hash_bytes": record["job_hash_bytes"],
        "redis_job_batch_set_bytes_per_batch": record["batch_set_bytes_per_batch"],
        "redis_job_batch_set_entries": record["batches"],
    }


def _runs_table(title: str, runs: list[dict[str, Any]], efficiency: dict[str, float]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("workers", justify="right")
    for column in ("images/s", "tasks/s", "efficiency", *[f"{part} cores" for part in PARTS]):
        table.add_column(column, justify="right")
    table.add_column("others' cores", justify="right")
    table.add_column("machine busy", justify="right")
    for run in runs:
        workers = str(run["workers"])
        table.add_row(
            workers,
            f"{run['images_per_s']:.1f}",
            f"{run['tasks_per_s']:.1f}",
            f"{efficiency[workers]:.2f}" if workers in efficiency else "",
            *[f"{run['cores'][part]:.2f}" for part in (*PARTS, "others")],
            f"{run['machine_busy']:.0%}",
        )
    return table


def _number(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def report(figures: dict[str, Any]) -> None:
    hold, batch = figures["scaling_hold_seconds"], figures["scaling_batch_size"]
    title = f"scaling: hold {hold:g} s per batch of {batch}; real Redis and Milvus standalone"
    console.print(_runs_table(title, figures["scaling_runs"], figures["scaling_efficiency"]))
    title = f"saturation: hold ~0, batches of {batch}, more workers until the rate stops rising"
    console.print(_runs_table(title, figures["saturation_runs"], {}))

    summary = Table(title="figures", title_justify="left")
    summary.add_column("measure")
    summary.add_column("value", justify="right")
    summary.add_column("target", justify="right")
    per_task = figures["ceiling_cpu_ms_per_task"]
    efficiency = figures["scaling_efficiency"]
    queue_paths = max(1, figures["redis_message_paths"])
    rows = [
        ("scaling efficiency, 8 workers", _number(efficiency.get("8")), ">= 0.80"),
        ("scaling efficiency, 16 workers", _number(efficiency.get("16")), ""),
        ("ceiling: tasks/s", _number(figures["ceiling_tasks_per_s"], 1), ""),
        ("ceiling: rows upserted/s", _number(figures["ceiling_rows_per_s"], 0), ""),
        ("ceiling: bottleneck", figures["ceiling_bottleneck"], ""),
        ("16 held workers' demand / ceiling", _number(figures["scaling_demand_16"]), "< 0.5"),
        (
            "CPU ms per task at the ceiling: " + " / ".join(PARTS),
            " / ".join(f"{per_task[part]:.1f}" for part in PARTS),
            "",
        ),
        (
            "Redis: bytes per queued task (MEMORY USAGE)",
            f"{figures['redis_queue_bytes_per_message']:.0f} ({queue_paths} paths of "
            f"{figures['redis_message_path_chars'] / queue_paths:.0f} bytes)",
            "",
        ),
        (
            "Milvus: index build after each flush, rows/s (CPU ms per row)",
            f"{figures['index_rows_per_s']:.0f} ({figures['index_milvus_cpu_ms_per_row']:.2f})",
            "",
        ),
        (
            "Redis: bytes per batch in a job's batch set",
            f"{figures['redis_job_batch_set_bytes_per_batch']:.1f} "
            f"({figures['redis_job_batch_set_entries']} batches)",
            "",
        ),
    ]
    for row in rows:
        summary.add_row(*row)
    console.print(summary)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, help="merge the figures into this JSON file")
    parser.add_argument("--hold", type=float, default=HOLD_SECONDS)
    parser.add_argument("--workers", type=int, nargs="+", default=list(SCALING_WORKERS))
    parser.add_argument("--saturation", type=int, nargs="+", default=list(SATURATION_WORKERS))
    parser.add_argument("--saturation-batches", type=int, default=SATURATION_BATCHES)
    arguments = parser.parse_args()
    if arguments.workers[0] != 1:
        parser.error("--workers must start at 1 (efficiency is relative to one worker)")

    settings = load_settings()
    console.print("[bold]Scaling benchmark[/bold]: real Redis, real Milvus standalone")
    with tempfile.TemporaryDirectory(prefix="ris-scaling-") as scratch:
        work = Path(scratch)
        redis = LocalRedis(work / "redis")
        milvus = LocalMilvusServer(work / "milvus", settings.cache_dir / "milvus")
        with redis, milvus:
            rig = Rig(work, redis, milvus)
            console.print(f"1/3 scaling, hold {arguments.hold:g} s per batch ...")
            scaling = measure_scaling(rig, tuple(arguments.workers), arguments.hold)
            console.print("2/3 saturation, hold ~0 ...")
            saturation = measure_saturation(
                rig, tuple(arguments.saturation), arguments.saturation_batches
            )
            console.print(f"3/3 Redis memory of a job record of {RECORD_BATCHES} batches ...")
            record = job_record_bytes(rig.tracker, RECORD_BATCHES, BATCH_SIZE)
            figures = figures_of(scaling, saturation, rig, record, arguments.hold)
            rig.index.close()
    report(figures)
    if arguments.json:
        merge_json(arguments.json, figures)
        console.print(f"figures merged into {arguments.json}")


if __name__ == "__main__":
    main()
