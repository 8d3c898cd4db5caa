"""The producer at scale: scan and enqueue a 200,000-file tree under a queue-length bound."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from bench.corpus import placeholder_tree
from bench.measure import BackgroundThread, PeakRss
from ris.dev.services import LocalMilvusLite, LocalRedis, service_environment
from ris.jobs.connection import connect_redis
from ris.jobs.tracker import JobTracker

BIN = Path(sys.executable).parent
FILES = 200_000
QUEUE_BOUND = 100


class QueueDrain(BackgroundThread):
    """Stands in for the workers: lets the queue fill up to the producer's bound first (to show
    the bound holding), then takes messages off as fast as Redis gives them."""

    def __init__(self, url: str, queue: str, bound: int):
        self.client = redis.Redis.from_url(url)
        self.queue = queue
        self.bound = bound
        self.max_length = 0
        super().__init__()

    def _sample(self) -> int:
        length = int(self.client.llen(self.queue))
        self.max_length = max(self.max_length, length)
        return length

    def _run(self) -> None:
        deadline = time.monotonic() + 10
        while self._sample() < self.bound and time.monotonic() < deadline:
            if self._stop.wait(0.01):
                return
        while not self._stop.is_set():
            self._sample()
            for _ in range(20):
                self.client.brpop([self.queue], timeout=0.1)


def measure_producer(cache_dir: Path, work: Path) -> dict[str, Any]:
    tree = placeholder_tree(cache_dir / "bench" / f"tree-{FILES}", FILES)
    with LocalRedis(work / "scan-redis") as broker, LocalMilvusLite(work / "scan-milvus") as milvus:
        env = {
            **service_environment(broker, milvus),
            "RIS_COLLECTION": "scan",
            "RIS_MAX_QUEUE_LENGTH": str(QUEUE_BOUND),
        }
        with QueueDrain(broker.url, "ris", QUEUE_BOUND) as drain, PeakRss(interval=0.05) as rss:
            started = time.perf_counter()
            producer = subprocess.Popen(
                [str(BIN / "producer"), "enqueue", str(tree), "--json"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            rss.watch(producer.pid)
            producer.wait(900)
            wall = time.perf_counter() - started
        tracker = JobTracker(connect_redis(broker.url))
        status = tracker.status(tracker.recent_jobs(1)[0])
    enqueued = status.enqueued if status else 0
    if enqueued != FILES:
        raise RuntimeError(f"producer enqueued {enqueued} of {FILES} paths")
    return {
        "producer_paths_per_s": FILES / wall,
        "producer_peak_rss_mb": rss.peak_mb(producer.pid),
        "max_queue_len": drain.max_length,
        "queue_bound": QUEUE_BOUND,
    }
