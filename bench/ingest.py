"""`make bench`: model-only, compute, end-to-end and the tutorial's way, side by side in one run."""

from __future__ import annotations

import argparse
import json
import os
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
from bench.measure import PeakRss, Rate, timed
from bench.producer_scan import measure_producer
from ris.convert import ensure_onnx_model
from ris.embedder import OnnxEmbedder
from ris.imaging import load_image
from ris.local import LocalMilvusLite, LocalRedis, service_environment
from ris.pipeline import EmbeddingPipeline
from ris.settings import Settings
from ris.store import VectorStore

BIN = Path(sys.executable).parent
console = Console(highlight=False)
BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)


def model_only(model_path: Path, images: np.ndarray) -> tuple[list[dict[str, Any]], float]:
    """Preprocessed tensors through the session: images/s per batch size and thread count."""
    cores = os.cpu_count() or 1
    rows = []
    for threads in sorted({1, cores}):
        for batch in BATCH_SIZES:
            embedder = OnnxEmbedder(str(model_path), threads, batch)
            embedder(images[:batch])  # warm-up
            rate = timed(len(images), lambda embedder=embedder: embedder(images))
            rows.append({"threads": threads, "batch": batch, "ips": rate.per_second})
    return rows, max(row["ips"] for row in rows)


def compute(settings: Settings, model_path: Path, paths: list[str]) -> Rate:
    """Decode + preprocess + embed in one process: no queue, no database."""
    pipeline = EmbeddingPipeline(settings, model_path=model_path)
    pipeline(paths[: settings.batch_size])  # warm-up
    batches = [
        paths[i : i + settings.batch_size] for i in range(0, len(paths), settings.batch_size)
    ]
    return timed(len(paths), lambda: [pipeline(batch) for batch in batches])


def end_to_end(corpus_root: Path, count: int, work: Path) -> dict[str, Any]:
    """producer enqueue -> Redis -> one worker -> Milvus, until every vector is searchable."""
    with LocalRedis(work / "redis") as redis, LocalMilvusLite(work / "milvus") as milvus:
        env = {**service_environment(redis, milvus), "RIS_COLLECTION": "bench"}
        with PeakRss() as rss:
            worker = subprocess.Popen(
                [
                    str(BIN / "celery"),
                    "-A",
                    "workers",
                    "worker",
                    "--loglevel",
                    "WARNING",
                    "--without-gossip",
                    "--without-mingle",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            rss.watch(worker.pid)
            time.sleep(5)  # the worker is ready and idle before the clock starts
            started = time.perf_counter()
            producer = subprocess.Popen(
                [str(BIN / "producer"), "enqueue", str(corpus_root), "--wait", "--json"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            rss.watch(producer.pid)
            out, _ = producer.communicate(timeout=900)
            seconds = time.perf_counter() - started
            worker.terminate()
            worker.wait(60)
        status = json.loads(out)
        store = VectorStore(milvus.url, "bench", dim=1280)
        indexed = store.count()
        store.close()
    if status["indexed"] != count or indexed != count:
        raise RuntimeError(f"end to end indexed {status['indexed']} ({indexed} rows) of {count}")
    return {
        "rate": Rate(count, seconds),
        "worker_peak_rss_mb": rss.peak_mb(worker.pid),
        "producer_peak_rss_mb": rss.peak_mb(producer.pid),
    }


def tutorial(model_path: Path, paths: list[str], work: Path) -> Rate:
    """The reference notebook's way: a towhee pipeline called once per image running the
    PyTorch model with the same weights, L2-normalised, every vector inserted at the end."""
    import torch
    from pymilvus import MilvusClient
    from towhee import pipe

    from ris.convert import build_reference_model
    from ris.models import get_model_spec

    model = build_reference_model(get_model_spec("efficientnet-lite0"))
    torch.set_num_threads(os.cpu_count() or 1)

    def embed(image: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            features, _ = model(torch.from_numpy(image[None]))
        return features[0].numpy()

    embedding_pipeline = (
        pipe.input("path")
        .map("path", "image", lambda path: load_image(path, 224, 10**8))
        .map("image", "vector", embed)
        .map("vector", "vector", lambda vector: vector / np.linalg.norm(vector))
        .output("vector")
    )
    with LocalMilvusLite(work / "tutorial") as milvus:
        client = MilvusClient(uri=milvus.url)
        client.create_collection("tutorial", dimension=1280, metric_type="IP", auto_id=True)

        def run() -> None:
            vectors = [embedding_pipeline(path).get()[0] for path in paths]
            client.insert(
                "tutorial",
                [{"vector": v.tolist(), "path": p} for v, p in zip(vectors, paths, strict=True)],
            )
            client.flush("tutorial")

        rate = timed(len(paths), run)
        client.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--images", type=int, default=2000)
    arguments = parser.parse_args()

    settings = Settings()
    console.print(f"[bold]Ingestion benchmark[/bold] on {os.cpu_count()} cores")
    corpus = [str(path) for path in build_corpus(settings.cache_dir, arguments.images)]
    corpus_root = Path(corpus[0]).parent.parent
    model_path = ensure_onnx_model(settings.model, settings.cache_dir)
    figures: dict[str, Any] = {"images": len(corpus), "cores": os.cpu_count()}

    console.print("1/5 model only ...")
    tensors = np.stack([load_image(path, 224, settings.max_pixels) for path in corpus[:256]])
    model_rows, figures["model_only_ips"] = model_only(model_path, tensors)
    figures["model_only_table"] = model_rows
    console.print("2/5 compute ...")
    figures["compute_ips"] = compute(settings, model_path, corpus).per_second
    with tempfile.TemporaryDirectory(prefix="ris-bench-") as scratch:
        work = Path(scratch)
        console.print("3/5 end to end ...")
        e2e = end_to_end(corpus_root, len(corpus), work)
        figures["e2e_ips"] = e2e["rate"].per_second
        figures["worker_peak_rss_mb"] = e2e["worker_peak_rss_mb"]
        console.print("4/5 the tutorial's way (200 images) ...")
        figures["tutorial_ips"] = tutorial(model_path, corpus[:200], work).per_second
        console.print("5/5 producer: scan and enqueue 200,000 files ...")
        figures.update(measure_producer(settings.cache_dir, work))
    figures["producer_e2e_peak_rss_mb"] = e2e["producer_peak_rss_mb"]
    figures["e2e_over_compute"] = figures["e2e_ips"] / figures["compute_ips"]
    figures["compute_over_model_only"] = figures["compute_ips"] / figures["model_only_ips"]
    figures["e2e_over_tutorial"] = figures["e2e_ips"] / figures["tutorial_ips"]
    report(figures)
    if arguments.json:
        arguments.json.write_text(json.dumps(figures, indent=2))
        console.print(f"figures written to {arguments.json}")


def report(figures: dict[str, Any]) -> None:
    model = Table(title="model only: images/s (preprocessed tensors)", title_justify="left")
    model.add_column("threads")
    for batch in BATCH_SIZES:
        model.add_column(f"b={batch}", justify="right")
    for threads in sorted({row["threads"] for row in figures["model_only_table"]}):
        rates = {
            r["batch"]: r["ips"] for r in figures["model_only_table"] if r["threads"] == threads
        }
        model.add_row(str(threads), *[f"{rates[b]:.0f}" for b in BATCH_SIZES])
    console.print(model)

    table = Table(title="ingestion rates", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    rows = [
        ("model only, best (images/s)", f"{figures['model_only_ips']:.0f}", ""),
        ("compute: decode+embed (images/s)", f"{figures['compute_ips']:.0f}", ""),
        ("end to end: enqueue -> searchable (images/s)", f"{figures['e2e_ips']:.0f}", ""),
        ("tutorial's way (images/s)", f"{figures['tutorial_ips']:.1f}", ""),
        ("end to end / compute", f"{figures['e2e_over_compute']:.2f}", ">= 0.90"),
        ("compute / model only", f"{figures['compute_over_model_only']:.2f}", ">= 0.80"),
        ("end to end / tutorial", f"{figures['e2e_over_tutorial']:.1f}", ">= 6"),
        ("worker peak RSS (MB)", f"{figures['worker_peak_rss_mb']:.0f}", "<= 1000"),
        ("producer: paths/s (200k files)", f"{figures['producer_paths_per_s']:.0f}", ">= 20000"),
        ("producer peak RSS (MB)", f"{figures['producer_peak_rss_mb']:.0f}", "<= 150"),
        (
            "max queue length seen (bound)",
            f"{figures['max_queue_len']} ({figures['queue_bound']})",
            "<= bound",
        ),
    ]
    for row in rows:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    main()
