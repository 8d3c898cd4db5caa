"""`make bench`: model-only, compute, end-to-end and the tutorial's way, side by side in one run."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from bench.corpus import build_corpus
from bench.decoding import decode_ms_by_format
from bench.measure import CpuSampler, PeakRss, Rate, merge_json, timed
from bench.model_sweep import BATCH_SIZES, Cell, Span, best, run_together, sweep
from bench.producer_scan import measure_producer
from bench.realsize import build_real_corpus
from ris.convert.export import ensure_onnx_model
from ris.dev.services import LocalMilvusLite, LocalRedis, service_environment
from ris.dev.workers import launch_workers, stop_workers
from ris.embedding.imaging import load_image
from ris.embedding.models import get_model_spec
from ris.embedding.openvino_session import openvino_capabilities
from ris.embedding.pipeline import EmbeddingPipeline
from ris.embedding.runtime import host_candidates, precisions_passed
from ris.index.milvus import MilvusIndex
from ris.jobs.connection import connect_redis
from ris.jobs.tracker import JobTracker
from ris.settings import Settings

BIN = Path(sys.executable).parent
console = Console(highlight=False, width=130)


# (processes, inference threads, decode threads each) that compute is measured in: one process
# on both cores, and the small-host worker layout below (SMALL_HOST_WORKER).
COMPUTE_LAYOUTS = ((1, 2, 2), (2, 1, 1))


def _compute_passes(
    settings: Settings, model_path: Path, paths: list[str], barrier: Any
) -> list[Span]:
    pipeline = EmbeddingPipeline(settings, model_path=model_path)
    pipeline(paths[: settings.batch_size])  # warm-up
    batches = [
        paths[i : i + settings.batch_size] for i in range(0, len(paths), settings.batch_size)
    ]
    spans = []
    for _ in range(2):
        barrier.wait()
        start = time.perf_counter()
        for batch in batches:
            pipeline(batch)
        spans.append((start, time.perf_counter()))
    return spans


def compute(settings: Settings, model_path: Path, paths: list[str]) -> dict[str, float]:
    """Decode + preprocess + embed, no queue, no database: images/s in each of
    COMPUTE_LAYOUTS (the processes share the paths), best of two passes, timed like the
    model-only sweep (bench/model_sweep.py)."""
    rates = {}
    for processes, threads, decoders in COMPUTE_LAYOUTS:
        layout = settings.model_copy(
            update={"inference_threads": threads, "decode_threads": decoders}
        )
        shares = [(layout, model_path, paths[i::processes]) for i in range(processes)]
        rate = run_together(_compute_passes, shares, len(paths))
        rates[f"{processes}x{threads}"] = round(rate, 1)
    return rates


TUTORIAL_MODEL = "efficientnet-lite0"
# Worker memory is compared after this many images and at the end: it must not grow.
EARLY = 500
# The worker layout the README recommends for a small (2-core) CPU host; the model batch is
# left to the worker (auto).
SMALL_HOST_WORKER = {
    "RIS_WORKER_CONCURRENCY": "2",
    "RIS_INFERENCE_THREADS": "1",
    "RIS_DECODE_THREADS": "1",
}


def end_to_end(
    corpus_root: Path, count: int, work: Path, model: str, app: str = "workers"
) -> dict[str, Any]:
    """producer enqueue -> Redis -> worker -> Milvus, from the first batch enqueued until the
    job is done, which is after the collection is flushed: every vector searchable. `app` is
    the Celery app the worker runs (the product's, or a bench variant of it)."""
    work.mkdir(parents=True)
    with LocalRedis(work / "redis") as redis, LocalMilvusLite(work / "milvus") as milvus:
        env = {
            **service_environment(redis, milvus),
            **SMALL_HOST_WORKER,
            "RIS_COLLECTION": "bench",
            "RIS_MODEL": model,
        }
        with PeakRss() as rss, CpuSampler() as cpu:
            # Ready once a worker process has loaded the model and logged its runtime.
            (worker,) = launch_workers(
                env, 1, work, app=app, ready_markers=("ready.", "inference on"), timeout=600
            )
            rss.watch(worker.pid)
            cpu.watch("worker", worker.pid)
            cpu.begin()
            producer = subprocess.Popen(
                [str(BIN / "producer"), "enqueue", str(corpus_root), "--wait", "--json"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            rss.watch(producer.pid)
            early = min(EARLY, count // 2)
            early_rss = rss_once_indexed(JobTracker(connect_redis(redis.url)), early, rss, worker)
            out, _ = producer.communicate(timeout=1800)
            cpu.end()
            late_rss = rss.current(worker.pid)
            stop_workers([worker])
        status = json.loads(out)
        index = MilvusIndex(milvus.url, "bench", dim=get_model_spec(model).dim)
        indexed = index.count()
        index.close()
    if status["indexed"] != count or indexed != count:
        raise RuntimeError(f"end to end indexed {status['indexed']} ({indexed} rows) of {count}")
    return {
        "rate": Rate(count, status["finished_at"] - status["created_at"]),
        "runtime": _logged_runtime(work / "worker-worker-0.log"),
        "worker_peak_rss_mb": rss.peak_mb(worker.pid),
        "worker_cpu_ms_per_image": cpu.cpu_seconds()["worker"] * 1000 / count,
        "worker_rss_early_mb": early_rss / 2**20,
        "worker_rss_at_end_mb": late_rss / 2**20,
        "worker_rss_growth": late_rss / early_rss - 1,
        "producer_peak_rss_mb": rss.peak_mb(producer.pid),
    }


def _logged_runtime(log: Path) -> str:
    """What the worker said it runs: `inference on openvino/bf16: <why>`."""
    found = re.search(r"inference on (\S+):", log.read_text(errors="replace"))
    return found.group(1) if found else "unknown"


def rss_once_indexed(
    tracker: JobTracker, images: int, rss: PeakRss, worker: subprocess.Popen[bytes]
) -> int:
    """The worker's RSS as soon as the newest job has indexed `images` images."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        jobs = tracker.recent_jobs(limit=1)
        status = tracker.status(jobs[0]) if jobs else None
        if status is not None and status.indexed >= images:
            return rss.current(worker.pid)
        time.sleep(0.1)
    raise RuntimeError(f"no job indexed {images} images within 10 minutes")


def tutorial(model_name: str, cache_dir: Path, paths: list[str], work: Path) -> Rate:
    """The reference notebook's way: a towhee pipeline called once per image, full decode,
    resize 256 + centre crop 224, the PyTorch model with the same weights, L2-normalised, every
    vector inserted at the end. EfficientNet-Lite0 is the notebook's own (float normalisation
    as torchvision does, its feature map averaged); any other model runs its recipe's PyTorch
    module, the one its ONNX file is exported from (uint8 pixels in, pooling inside)."""
    import torch
    from PIL import Image
    from pymilvus import MilvusClient
    from towhee import pipe

    from ris.convert.export import backbone_module, build_reference_model
    from ris.embedding.models import BACKBONES

    notebook = model_name == TUTORIAL_MODEL
    size = get_model_spec(model_name).input_size
    if notebook:
        network = backbone_module(BACKBONES[TUTORIAL_MODEL], cache_dir).network
    else:  # the compact models' projection is left out: a matrix product, no cost to speak of
        network = build_reference_model(get_model_spec(model_name), cache_dir)
    torch.set_num_threads(os.cpu_count() or 1)

    def preprocess(path: str) -> np.ndarray:
        image = Image.open(path).convert("RGB")
        scale = size * 8 / 7 / min(image.size)  # 256 for 224, as torchvision's recipe
        image = image.resize((round(image.width * scale), round(image.height * scale)))
        left, top = (image.width - size) // 2, (image.height - size) // 2
        pixels = np.array(image.crop((left, top, left + size, top + size)))  # writable
        if not notebook:
            return pixels
        return ((pixels.astype(np.float32) / 255 - 0.5) / 0.5).transpose(2, 0, 1)

    def embed(tensor: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            if not notebook:
                return network(torch.from_numpy(tensor[None]))[0][0].numpy()
            features = network.extract_features(torch.from_numpy(tensor[None]))
        return features.mean(dim=(2, 3))[0].numpy()

    embedding_pipeline = (
        pipe.input("path")
        .map("path", "tensor", preprocess)
        .map("tensor", "vector", embed)
        .map("vector", "vector", lambda vector: vector / np.linalg.norm(vector))
        .output("vector")
    )
    dimension = len(embedding_pipeline(paths[0]).get()[0])
    with LocalMilvusLite(work / f"tutorial-{model_name}") as milvus:
        client = MilvusClient(uri=milvus.url)
        client.create_collection("tutorial", dimension=dimension, metric_type="IP", auto_id=True)

        def run() -> None:
            vectors = [embedding_pipeline(path).get()[0] for path in paths]
            rows = [{"vector": v.tolist(), "path": p} for v, p in zip(vectors, paths, strict=True)]
            client.insert("tutorial", rows)
            client.flush("tutorial")

        rate = timed(len(paths), run)
        client.close()
    return rate


def default_model_figures(settings: Settings, corpus: list[str]) -> dict[str, Any]:
    """The model users get: every runtime configuration model only, compute with `auto`."""
    model_path = ensure_onnx_model(settings.model, settings.cache_dir)
    figures: dict[str, Any] = {"model": settings.model}
    console.print("  compute (decode + embed, runtime auto) ...")
    figures["compute_ips_by_layout"] = compute(settings, model_path, corpus)
    figures["compute_ips"] = max(figures["compute_ips_by_layout"].values())
    console.print("  model only: every runtime x precision x batch x layout ...")
    tensors = np.stack([load_image(path, 224, settings.max_pixels) for path in corpus[:128]])
    rows = sweep(model_path, tensors, host_candidates(openvino_capabilities()))
    figures["model_only_ips_by_config"] = rows
    # The ceiling is the best configuration the product may run: precisions the model passed
    # the quality gate in on the development sets (bf16 did not); the fastest of all beside it.
    allowed = [row for row in rows if row["precision"] in precisions_passed(settings.model)]
    figures["model_only_best"] = best(allowed)
    figures["model_only_ips"] = best(allowed)["ips"]
    figures["model_only_ips_any_precision"] = best(rows)["ips"]
    figures["model_only_best_any_precision"] = best(rows)
    figures["model_only_ips_onnxruntime_f32"] = best(rows, runtime="onnxruntime")["ips"]
    return figures


def real_corpus_figures(settings: Settings, work: Path) -> dict[str, Any]:
    """Photos as users have them: decode per format, end to end with the product's decoder and
    with today's, in the same run."""
    root = build_real_corpus(settings.cache_dir)
    files = sorted(path for path in root.iterdir() if path.suffix != ".json")
    console.print(f"  decode per format, one core ({len(files)} files) ...")
    decode = decode_ms_by_format(files)
    figures: dict[str, Any] = {"real_images": len(files), "real_decode_ms_by_format": decode}
    for key, app in (
        ("real_e2e", "workers"),
        ("real_e2e_baseline", "bench.baseline_decode_worker"),
    ):
        console.print(f"  end to end ({'product' if app == 'workers' else 'today'}'s decoder) ...")
        run = end_to_end(root, len(files), work / key, settings.model, app)
        figures[f"{key.replace('real_e2e', 'real_e2e_ips')}"] = run["rate"].per_second
        figures[f"{key}_worker_cpu_ms_per_image"] = run["worker_cpu_ms_per_image"]
    figures["real_e2e_over_baseline"] = figures["real_e2e_ips"] / figures["real_e2e_ips_baseline"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--images", type=int, default=2000)
    arguments = parser.parse_args()

    settings = Settings()
    lite0 = Settings(model=TUTORIAL_MODEL)
    console.print(f"[bold]Ingestion benchmark[/bold] on {os.cpu_count()} cores")
    corpus = [str(path) for path in build_corpus(settings.cache_dir, arguments.images)]
    corpus_root = Path(corpus[0]).parent.parent
    figures: dict[str, Any] = {"images": len(corpus), "cores": os.cpu_count()}

    console.print(f"1/5 the default model ({settings.model}) ...")
    figures.update(default_model_figures(settings, corpus))
    lite0_path = ensure_onnx_model(TUTORIAL_MODEL, settings.cache_dir)
    console.print("2/5 EfficientNet-Lite0 alone: compute ...")
    figures["lite0_compute_ips_by_layout"] = compute(lite0, lite0_path, corpus)
    figures["lite0_compute_ips"] = max(figures["lite0_compute_ips_by_layout"].values())
    with tempfile.TemporaryDirectory(prefix="ris-bench-") as scratch:
        work = Path(scratch)
        console.print("3/5 end to end: the default model, then Lite0 ...")
        e2e = end_to_end(corpus_root, len(corpus), work / "e2e", settings.model)
        figures["e2e_ips"] = e2e["rate"].per_second
        figures.update({key: value for key, value in e2e.items() if key.startswith("worker_")})
        figures["e2e_runtime"] = e2e["runtime"]
        lite0_e2e = end_to_end(corpus_root, len(corpus), work / "lite0-e2e", TUTORIAL_MODEL)
        figures["lite0_e2e_ips"] = lite0_e2e["rate"].per_second
        console.print("  the tutorial's way, 200 images: Lite0, then the default model ...")
        figures["tutorial_ips"] = tutorial(
            TUTORIAL_MODEL, settings.cache_dir, corpus[:200], work
        ).per_second
        figures["tutorial_default_ips"] = (
            tutorial(settings.model, settings.cache_dir, corpus[:200], work).per_second
            if settings.model != TUTORIAL_MODEL
            else figures["tutorial_ips"]
        )
        console.print("4/5 real-size photos ...")
        figures.update(real_corpus_figures(settings, work))
        console.print("5/5 producer: scan and enqueue 200,000 files ...")
        figures.update(measure_producer(settings.cache_dir, work))
    figures["producer_e2e_peak_rss_mb"] = e2e["producer_peak_rss_mb"]
    figures["e2e_over_model_only_onnxruntime_f32"] = (
        figures["e2e_ips"] / figures["model_only_ips_onnxruntime_f32"]
    )
    figures["e2e_over_compute"] = figures["e2e_ips"] / figures["compute_ips"]
    figures["compute_over_model_only"] = figures["compute_ips"] / figures["model_only_ips"]
    # Each end-to-end rate against the tutorial's way with the same model.
    figures["e2e_over_tutorial"] = figures["e2e_ips"] / figures["tutorial_default_ips"]
    figures["lite0_e2e_over_compute"] = figures["lite0_e2e_ips"] / figures["lite0_compute_ips"]
    figures["lite0_e2e_over_tutorial"] = figures["lite0_e2e_ips"] / figures["tutorial_ips"]
    report(figures)
    if arguments.json:
        merge_json(arguments.json, figures)
        console.print(f"figures written to {arguments.json}")


def report(figures: dict[str, Any]) -> None:
    sweep_table = Table(
        title=f"model only, {figures['model']}: images/s (preprocessed tensors)",
        title_justify="left",
    )
    sweep_table.add_column("runtime, layout")
    for batch in BATCH_SIZES:
        sweep_table.add_column(f"b={batch}", justify="right")
    rows = figures["model_only_ips_by_config"]
    layouts: dict[tuple, dict[int, float]] = {}
    for row in rows:
        layout = (row["runtime"], row["precision"], row["processes"], row["threads"])
        layouts.setdefault(layout, {})[row["batch"]] = row["ips"]
    for (runtime, precision, processes, threads), rates in layouts.items():
        sweep_table.add_row(
            f"{runtime}/{precision}, {processes}x{threads}",
            *[f"{rates[b]:.0f}" if b in rates else "" for b in BATCH_SIZES],
        )
    console.print(sweep_table)

    decode = Table(
        title="real-size photos: decode to the model's input, ms per file, one core",
        title_justify="left",
    )
    for column in ("format", "files", "today", "product", "speed-up"):
        decode.add_column(column, justify="left" if column == "format" else "right")
    for name, row in figures["real_decode_ms_by_format"].items():
        decode.add_row(
            name,
            str(row["files"]),
            f"{row['baseline_ms']:.1f}",
            f"{row['ms']:.1f}",
            f"{row['speedup']:.2f}x",
        )
    console.print(decode)

    best_cell = Cell(**{k: v for k, v in figures["model_only_best"].items() if k != "ips"})
    fastest = figures["model_only_best_any_precision"]
    fastest_cell = Cell(**{k: v for k, v in fastest.items() if k != "ips"})
    table = Table(title="ingestion rates (images/s unless stated)", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    rows_out = [
        (f"model only, best allowed: {best_cell.label}", f"{figures['model_only_ips']:.0f}", ""),
        (
            f"model only, any precision: {fastest_cell.label} (fails the quality gate)",
            f"{figures['model_only_ips_any_precision']:.0f}",
            "",
        ),
        (
            "model only, best on ONNX Runtime f32 (before)",
            f"{figures['model_only_ips_onnxruntime_f32']:.0f}",
            "",
        ),
        (
            "compute: decode + embed, runtime auto, best layout ("
            + ", ".join(f"{k}: {v:.0f}" for k, v in figures["compute_ips_by_layout"].items())
            + ")",
            f"{figures['compute_ips']:.0f}",
            "",
        ),
        (
            f"end to end: enqueue -> searchable ({figures['e2e_runtime']})",
            f"{figures['e2e_ips']:.0f}",
            ">= 200 moonshot",
        ),
        ("tutorial's way, default model (PyTorch)", f"{figures['tutorial_default_ips']:.1f}", ""),
        ("tutorial's way, Lite0 (PyTorch)", f"{figures['tutorial_ips']:.1f}", ""),
        (
            "end to end / model only on ONNX Runtime f32",
            f"{figures['e2e_over_model_only_onnxruntime_f32']:.2f}",
            ">= 1.5",
        ),
        ("end to end / compute", f"{figures['e2e_over_compute']:.2f}", ">= 0.90"),
        ("compute / model only", f"{figures['compute_over_model_only']:.2f}", ">= 0.85"),
        ("end to end / tutorial, same model", f"{figures['e2e_over_tutorial']:.1f}", ">= 6"),
        ("worker peak RSS (MB)", f"{figures['worker_peak_rss_mb']:.0f}", "<= 1000"),
        (
            "worker RSS early -> end (MB)",
            f"{figures['worker_rss_early_mb']:.0f} -> {figures['worker_rss_at_end_mb']:.0f} "
            f"({figures['worker_rss_growth']:+.1%})",
            "within 10%",
        ),
        ("worker CPU per image (ms)", f"{figures['worker_cpu_ms_per_image']:.1f}", ""),
        (
            "Lite0: compute / end to end",
            f"{figures['lite0_compute_ips']:.0f} / {figures['lite0_e2e_ips']:.0f}",
            "",
        ),
        ("Lite0: end to end / compute", f"{figures['lite0_e2e_over_compute']:.2f}", ">= 0.90"),
        ("Lite0: end to end / tutorial", f"{figures['lite0_e2e_over_tutorial']:.1f}", ">= 6"),
        (
            f"real-size photos ({figures['real_images']}): end to end, product's decoder",
            f"{figures['real_e2e_ips']:.1f}",
            "",
        ),
        (
            "real-size photos: end to end, today's decoder",
            f"{figures['real_e2e_ips_baseline']:.1f}",
            "",
        ),
        (
            "real-size: product / today",
            f"{figures['real_e2e_over_baseline']:.2f}",
            ">= 1.5 (moonshot 2)",
        ),
        (
            "real-size: worker CPU per image, product / today (ms)",
            f"{figures['real_e2e_worker_cpu_ms_per_image']:.0f} / "
            f"{figures['real_e2e_baseline_worker_cpu_ms_per_image']:.0f}",
            "",
        ),
        ("producer: paths/s (200k files)", f"{figures['producer_paths_per_s']:.0f}", ">= 20000"),
        ("producer peak RSS (MB)", f"{figures['producer_peak_rss_mb']:.0f}", "<= 150"),
        (
            "max queue length seen (bound)",
            f"{figures['max_queue_len']} ({figures['queue_bound']})",
            "<= bound",
        ),
    ]
    for row in rows_out:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    main()
