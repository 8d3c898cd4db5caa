"""`make bench-scale`: a million rows in the real Milvus standalone, written and searched through
the product's own index client, with the load rate, readiness, memory, bytes and recall measured.

The rows are made from the real descriptor distribution: the compact model embeds every image
of the development sets, a Gaussian with their mean and covariance is fitted, and the rows (and
the queries) are drawn from it and L2-normalised. A Gaussian has none of the clusters real
collections have, so an approximate index finds its neighbours harder than in a real one.
The benchmark corpus's 2,000 real photos are written beside them, so that the million can also
be searched by image through `query serve`, as bench.query searches 10,000 rows.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import redis
from pymilvus import connections, utility
from rich.console import Console
from rich.progress import Progress

from bench.corpus import build_corpus, placeholder_tree
from bench.measure import merge_json, process_tree
from bench.query import CROPS, SEQUENTIAL, crop_queries, measure_mix
from ris.datasets import dataset_path
from ris.datasets.samples import sample_photos
from ris.dev.services import LocalMilvusServer, LocalQueryService, LocalRedis
from ris.embedding.pipeline import EmbeddingPipeline
from ris.embedding.session import l2_normalise
from ris.evaluation.eval_sets import read_eval_set
from ris.files.changes import file_state
from ris.files.identity import image_id
from ris.files.scan import iter_image_paths
from ris.index.base import ImageRecord
from ris.index.milvus import INDEX_KINDS, SEARCH_EF, SEARCH_NPROBE, MilvusIndex
from ris.jobs.contract import BatchPayload
from ris.search.audit import exact_top
from ris.settings import load_settings

console = Console(highlight=False, width=110)
MODEL = "lite0-mobilenet-v2-gem-deframe-384"
SETS = ("tuxpaint", "copydetect-mild", "copydetect-hard")
# Like RIS_BATCH_SIZE workers writing at once.
WRITERS, BATCH = 4, 64
# How rows reach Milvus: the product's upsert, insert of new ids, or bulk import of files.
WRITE_PATHS = ("upsert", "insert", "import")
IMPORT_ROWS = 100_000
QUERIES, SAMPLE, K = 1000, 1000, 10
BIN = Path(sys.executable).parent


def embed_all(pipeline: EmbeddingPipeline, paths: list[str]) -> tuple[list[str], np.ndarray]:
    """The paths that decoded and their vectors, through the real pipeline, 64 at a time."""
    chunks = [pipeline(paths[start : start + 64]) for start in range(0, len(paths), 64)]
    kept = [path for chunk in chunks for path in chunk.paths]
    return kept, np.concatenate([chunk.vectors for chunk in chunks])


def development_images() -> list[str]:
    """Every image of the development sets, galleries and queries."""
    return sorted(
        {
            path
            for name in SETS
            for eval_set in [read_eval_set(dataset_path(name))]
            for path in eval_set.gallery + [query.path for query in eval_set.queries]
        }
    )


def queries_as_users(
    settings: Any, milvus: LocalMilvusServer, photos: list[str], work: Path
) -> dict[str, float]:
    """`query serve` over the whole collection, asked as bench.query asks the 10,000-row one:
    photos of the collection and cropped, re-compressed copies that verify, interleaved."""
    exact = [Path(path).read_bytes() for path in photos[::17][:SEQUENTIAL]]
    crops = crop_queries(photos[5::40][:CROPS])
    with LocalRedis(work / "serve-redis") as broker:
        environment = {
            **os.environ,
            "RIS_REDIS_URL": broker.url,
            "RIS_MILVUS_URI": milvus.url,
            "RIS_COLLECTION": "scale",
            "RIS_MODEL": MODEL,
        }
        server = LocalQueryService(work / "serve", environment).start()
        try:
            sources = len(sample_photos(settings.cache_dir))
            measure_mix(server.url, exact[:5], crops[:2], sources)  # warm-up
            return measure_mix(server.url, exact, crops, sources)
        finally:
            server.stop()


def fitted_sampler(real: np.ndarray, seed: int) -> Any:
    mean, covariance = real.mean(axis=0), np.cov(real.T)
    factor = np.linalg.cholesky(covariance + 1e-9 * np.eye(len(covariance)))
    rng = np.random.default_rng(seed)

    def sample(count: int) -> np.ndarray:
        noise = rng.standard_normal((count, len(mean))).astype(np.float32)
        return l2_normalise(mean + noise @ factor.T.astype(np.float32)).astype(np.float32)

    return sample


def records(
    paths: list[str], ids: np.ndarray, vectors: np.ndarray, start: int
) -> list[ImageRecord]:
    """Rows for `paths[start:]` (one batch) with each file's state as the producer reads it."""
    batch = []
    for offset, vector in enumerate(vectors):
        path = paths[start + offset]
        size, mtime_ns = file_state(path)
        batch.append(ImageRecord(int(ids[start + offset]), path, vector, size, mtime_ns))
    return batch


def load(
    url: str, paths: list[str], ids: np.ndarray, vectors: np.ndarray, index_type: str, write: str
) -> float:
    """Rows written by WRITERS concurrent clients in BATCH-row messages, by upsert (the
    product's path) or by insert; returns seconds."""
    dim = vectors.shape[1]
    indexes = [
        MilvusIndex(url, "scale", dim=dim, model=MODEL, index_type=index_type)
        for _ in range(WRITERS)
    ]
    indexes[0].ensure_collection()
    starts = range(0, len(vectors), BATCH)
    started = time.perf_counter()
    with (
        concurrent.futures.ThreadPoolExecutor(WRITERS) as pool,
        Progress(console=console, transient=True) as progress,
    ):
        task = progress.add_task(f"loading by {write}", total=len(vectors))

        def write_batch(number_start: tuple[int, int]) -> None:
            number, start = number_start
            batch = vectors[start : start + BATCH]
            index = indexes[number % WRITERS]
            written = records(paths, ids, batch, start)
            if write == "upsert":
                index.upsert(written)
            else:
                for rows in index.messages(written):
                    index.client.insert(index.collection, rows)
            progress.advance(task, len(batch))

        list(pool.map(write_batch, enumerate(starts)))
    return time.perf_counter() - started


def bulk_import(
    url: str,
    files_root: Path,
    paths: list[str],
    ids: np.ndarray,
    vectors: np.ndarray,
    index_type: str,
) -> float:
    """Rows written as NumPy files (one per field, IMPORT_ROWS rows each) under `files_root` in
    Milvus' own storage, then imported by Milvus (bulk insert); returns seconds until every
    import ended."""
    index = MilvusIndex(url, "scale", dim=vectors.shape[1], model=MODEL, index_type=index_type)
    index.ensure_collection()
    # The ORM's bulk insert: Milvus 2.3's import call, which MilvusClient does not offer
    # (pymilvus marks the ORM deprecated).
    warnings.filterwarnings("ignore", ".*ORM-style PyMilvus API", FutureWarning)
    connections.connect(alias="bench-import", uri=url)
    started = time.perf_counter()
    tasks = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("writing files, importing", total=len(vectors))
        for start in range(0, len(vectors), IMPORT_ROWS):
            folder = files_root / f"{start:09d}"
            folder.mkdir(parents=True)
            chunk = slice(start, start + IMPORT_ROWS)
            states = [file_state(path) for path in paths[chunk]]
            columns = {
                "id": ids[chunk],
                "vector": vectors[chunk],
                "path": np.array(paths[chunk]),
                "size": np.array([size for size, _ in states], dtype=np.int64),
                "mtime_ns": np.array([mtime for _, mtime in states], dtype=np.int64),
                "content_hash": np.array([""] * len(states)),
            }
            for field, values in columns.items():
                np.save(folder / f"{field}.npy", values)
            files = [str(folder / f"{field}.npy") for field in columns]
            tasks.append(utility.do_bulk_insert("scale", files=files, using="bench-import"))
            progress.advance(task, len(states))
        for number in tasks:
            while (
                state := utility.get_bulk_insert_state(number, using="bench-import")
            ).state_name not in (
                "Completed",
                "Failed",
            ):
                time.sleep(1)
            if state.state_name == "Failed":
                raise RuntimeError(f"bulk import failed: {state.infos}")
    connections.disconnect("bench-import")
    return time.perf_counter() - started


def wait_until_ready(index: MilvusIndex, rows: int) -> None:
    """Flushed, every row indexed, and loaded."""
    index.flush()
    while True:
        described = index.client.describe_index(index.collection, "vector")
        if int(described.get("indexed_rows", 0)) >= rows and not int(
            described.get("pending_index_rows", 0)
        ):
            break
        time.sleep(2)
    index.client.refresh_load(index.collection)
    while index.client.get_load_state(index.collection)["state"].name != "Loaded":
        time.sleep(1)


def settle(index: MilvusIndex, limit_s: float = 900, still_s: float = 60) -> dict[str, Any]:
    """What Milvus is left with once ready: its segments, and how long compaction goes on
    merging them (until their number has not changed for `still_s`)."""
    started = last_change = time.perf_counter()
    first = segments = len(index.client.list_persistent_segments(index.collection))
    while time.perf_counter() - last_change < still_s and time.perf_counter() - started < limit_s:
        time.sleep(5)
        now = len(index.client.list_persistent_segments(index.collection))
        if now != segments:
            segments, last_change = now, time.perf_counter()
    return {
        "segments_when_ready": first,
        "segments_settled": segments,
        "compaction_after_ready_s": round(last_change - started, 1),
    }


def search_one_by_one(
    index: MilvusIndex, queries: np.ndarray, breadth: int = 0
) -> tuple[list[float], list[list[int]]]:
    latencies, found = [], []
    for query in queries:
        started = time.perf_counter()
        (hits,) = index.search(query[None], K, breadth=breadth)
        latencies.append((time.perf_counter() - started) * 1000)
        found.append([hit.id for hit in hits])
    return latencies, found


def tree_rss(pid: int) -> int:
    return sum(process.memory_info().rss for process in process_tree(pid))


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) Milvus has used so far: one process, its etcd inside."""
    return sum(sum(process.cpu_times()[:2]) for process in process_tree(pid))


def storage_bytes(
    milvus_dir: Path,
    folders: tuple[str, ...] = ("insert_log", "delta_log", "stats_log", "index_files"),
) -> int:
    """The collection's files in Milvus' storage: row and delete logs, statistics, index files
    (its message log and metadata left out). Segments compacted away stay until collected."""
    return sum(
        path.stat().st_size
        for folder in folders
        for path in (milvus_dir / "data" / folder).rglob("*")
        if path.is_file()
    )


def rescan(tree: Path, paths: list[str], environment: dict[str, str], work: Path) -> dict[str, Any]:
    """`producer enqueue` over the indexed tree: nothing sent; then 1% touched: exactly those."""
    with LocalRedis(work / "redis") as broker:
        environment = {**environment, "RIS_REDIS_URL": broker.url}
        unchanged, seconds = _enqueue(tree, environment)
        if unchanged["enqueued"] or unchanged["skipped"] != len(paths):
            raise RuntimeError(f"re-scan of an unchanged tree: {unchanged}")
        touched = set(paths[::100])
        for path in touched:
            os.utime(path, ns=(time.time_ns(), time.time_ns()))
        after_touch, _ = _enqueue(tree, environment)
        sent = {path for message in queued_payloads(broker.url) for path in message.paths}
    return {
        "rescan_paths_per_s": round(len(paths) / seconds),
        "rescan_s": round(seconds, 1),
        "rescan_sent": unchanged["enqueued"],
        "touched": len(touched),
        "touched_sent": after_touch["enqueued"],
        "touched_sent_exactly": sent == touched,
    }


def _enqueue(tree: Path, environment: dict[str, str]) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    finished = subprocess.run(
        [str(BIN / "producer"), "enqueue", str(tree), "--json"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=1800,
        check=True,
    )
    return json.loads(finished.stdout), time.perf_counter() - started


def queued_payloads(url: str) -> list[BatchPayload]:
    """The batches waiting in the queue, read from the Celery messages without taking them."""
    client = redis.Redis.from_url(url)
    payloads = []
    for raw in client.lrange("ris", 0, -1):
        body = json.loads(base64.b64decode(json.loads(raw)["body"]))
        payloads.append(BatchPayload.from_message(body[0][0]))
    return payloads


def write_rows(
    url: str,
    work: Path,
    written: list[str],
    ids: np.ndarray,
    vectors: np.ndarray,
    index_type: str,
    write: str,
) -> float:
    if write == "import":
        # Each call its own folder of files in Milvus' storage (the wheel's local storage).
        files_root = work / "milvus" / "data" / "bench-import" / f"{time.time_ns()}"
        return bulk_import(url, files_root, written, ids, vectors, index_type)
    return load(url, written, ids, vectors, index_type, write)


def redelivered(index: MilvusIndex, ids: list[int], write_again: Any) -> dict[str, int]:
    """A batch (rows `ids`) written again by the same path, as a redelivered task writes it:
    the rows Milvus then counts beyond the ones before, and how many it returns for those ids."""
    before = index.count()
    write_again()
    index.flush()
    deadline = time.perf_counter() + 120
    while index.count() == before and time.perf_counter() < deadline:
        time.sleep(5)  # imported rows show once their segment is indexed and loaded
    returned = index.client.query(index.collection, filter=f"id in {ids}", output_fields=["id"])
    return {"extra_rows_counted": index.count() - before, "rows_returned": len(returned)}


def measure(
    rows: int, work: Path, index_type: str, write: str = "upsert", loading_only: bool = False
) -> dict[str, Any]:
    settings = load_settings().model_copy(update={"model": MODEL})
    console.print("embedding the development sets with the compact model")
    pipeline = EmbeddingPipeline(settings)
    sample = fitted_sampler(embed_all(pipeline, development_images())[1], seed=0)
    # The synthetic rows, then the corpus's real photos (searched by image at the end).
    corpus = [str(path) for path in build_corpus(settings.cache_dir)]
    photos, photo_vectors = embed_all(pipeline, corpus)
    vectors = np.concatenate(
        [sample(min(100_000, rows - s)) for s in range(0, rows, 100_000)] + [photo_vectors]
    )
    queries = sample(QUERIES)
    tree = placeholder_tree(settings.cache_dir / "bench" / f"tree-{rows}", rows)
    paths = list(iter_image_paths(str(tree)))
    written = paths + photos
    ids = np.array([image_id(path) for path in written], dtype=np.int64)
    total = len(written)
    milvus = LocalMilvusServer(work / "milvus", settings.cache_dir / "milvus")
    with milvus:
        disk_before, rss_before = storage_bytes(work / "milvus"), tree_rss(milvus.pid)
        cpu_before = tree_cpu_seconds(milvus.pid)
        console.print(f"loading {total:,} rows of {vectors.shape[1]}-d by {write}")
        load_seconds = write_rows(milvus.url, work, written, ids, vectors, index_type, write)
        started = time.perf_counter()
        index = MilvusIndex(milvus.url, "scale", dim=vectors.shape[1], model=MODEL)
        wait_until_ready(index, total)
        index.ensure_collection()  # learns the index it was built with
        ready_seconds = time.perf_counter() - started
        rss, disk = tree_rss(milvus.pid), storage_bytes(work / "milvus") - disk_before
        cpu_ready = tree_cpu_seconds(milvus.pid) - cpu_before
        console.print("waiting for compaction to settle")
        settled = settle(index)
        cpu_settled = tree_cpu_seconds(milvus.pid) - cpu_before
        loading = {
            "write": write,
            "rows": index.count(),
            "load_rows_per_s": round(total / load_seconds),
            "load_s": round(load_seconds, 1),
            "ready_s": round(load_seconds + ready_seconds, 1),
            "index_after_load_s": round(ready_seconds, 1),
            **settled,
            # Milvus' CPU for the rows (writes, flushes, index builds, compactions) per row.
            "milvus_cpu_ms_per_row_ready": round(cpu_ready * 1000 / total, 3),
            "milvus_cpu_ms_per_row_settled": round(cpu_settled * 1000 / total, 3),
            # Delete entries: an upsert is a delete and an insert, even of a new id.
            "delete_log_bytes": storage_bytes(work / "milvus", ("delta_log",)),
            "redelivered_batch": redelivered(
                index,
                [int(number) for number in ids[:BATCH]],
                lambda: write_rows(
                    milvus.url,
                    work,
                    written[:BATCH],
                    ids[:BATCH],
                    vectors[:BATCH],
                    index_type,
                    write,
                ),
            ),
        }
        if loading_only:
            return loading
        console.print("searching")
        blocks = (
            (ids[s : s + 100_000], vectors[s : s + 100_000]) for s in range(0, total, 100_000)
        )
        truth = exact_top(blocks, queries, K)
        recall, latencies = {}, {}
        shipped = SEARCH_EF if index_type == "hnsw" else SEARCH_NPROBE
        for breadth in (shipped // 2, shipped, 2 * shipped, 4 * shipped):
            latencies[breadth], found = search_one_by_one(index, queries, breadth)
            recall[breadth] = np.mean(
                [len(set(f) & t) / K for f, t in zip(found, truth, strict=True)]
            )
        chosen = np.random.default_rng(1).choice(total, SAMPLE, replace=False)
        _, self_found = search_one_by_one(index, vectors[chosen], shipped)
        self_rank1 = np.mean(
            [bool(f) and f[0] == ids[row] for f, row in zip(self_found, chosen, strict=True)]
        )
        counted = index.count()
        console.print("re-scanning the tree with the producer")
        environment = {
            **os.environ,
            "RIS_MILVUS_URI": milvus.url,
            "RIS_COLLECTION": "scale",
            "RIS_MODEL": MODEL,
        }
        rescanned = rescan(tree, paths, environment, work)
        console.print("searching by image through `query serve`")
        as_users = queries_as_users(settings, milvus, photos, work)
    return {
        "rows": counted,
        "dim": vectors.shape[1],
        "load_rows_per_s": loading["load_rows_per_s"],
        "load_s": loading["load_s"],
        "ready_s": loading["ready_s"],
        "index_after_load_s": loading["index_after_load_s"],
        "loading": loading,
        "milvus_rss_mb": round(rss / 2**20),
        # What the rows added to the loaded server's memory, and to its storage.
        "bytes_per_image": round((rss - rss_before) / total),
        "disk_bytes_per_image": round(disk / total),
        # At the shipped search breadth, then wider ones beside it.
        "search_p50_ms": round(float(np.percentile(latencies[shipped], 50)), 2),
        "search_p99_ms": round(float(np.percentile(latencies[shipped], 99)), 2),
        "recall_at_10": round(float(recall[shipped]), 4),
        "index_type": index_type,
        "search_breadth": shipped,
        "by_breadth": {
            breadth: {
                "recall_at_10": round(float(recall[breadth]), 4),
                "search_p50_ms": round(float(np.percentile(latencies[breadth], 50)), 2),
                "search_p99_ms": round(float(np.percentile(latencies[breadth], 99)), 2),
            }
            for breadth in recall
        },
        "self_rank1": round(float(self_rank1), 4),
        **rescanned,
        # The whole request of `query serve` (embed, search, verify), as bench.query reports it.
        "queries_as_users": {name: round(value, 3) for name, value in as_users.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--index", choices=list(INDEX_KINDS), default="ivf_sq8")
    parser.add_argument(
        "--write", choices=WRITE_PATHS, default="upsert", help="how the rows reach Milvus"
    )
    parser.add_argument(
        "--loading-only",
        action="store_true",
        help="stop after loading, readiness, compaction and a redelivered batch",
    )
    parser.add_argument("--json", type=Path, help="merge the figures into this JSON file")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ris-scale-") as work:
        figures = measure(
            arguments.rows, Path(work), arguments.index, arguments.write, arguments.loading_only
        )
    for name, value in figures.items():
        console.print(f"{name:>22}  {value}")
    if arguments.json:
        key = f"scale_{arguments.index}" + (
            "" if arguments.write == "upsert" else f"_{arguments.write}"
        )
        merge_json(arguments.json, {key + ("_loading" if arguments.loading_only else ""): figures})


if __name__ == "__main__":
    main()
