"""The scaling rig: real Redis and Milvus standalone, fleets of held workers, timed jobs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from celery import Celery
from pymilvus import MilvusClient

from bench.corpus import placeholder_tree
from bench.jobwatch import JobWatch, QueueSample
from bench.measure import CpuSampler
from bench.standin_worker import HOLD_VARIABLE
from ris.dev.services import LocalMilvusServer, LocalRedis, service_environment
from ris.dev.workers import launch_workers, stop_workers
from ris.embedding.models import get_model_spec
from ris.index.milvus import MilvusIndex
from ris.jobs.connection import connect_redis
from ris.jobs.tracker import JobTracker
from ris.settings import load_settings

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
COLLECTION = QUEUE = "scaling"
CPUS = os.cpu_count() or 1
BATCH_SIZE = 64
JOB_TIMEOUT = 600.0
INDEX_TIMEOUT = 300.0


@dataclass
class Run:
    """One job: N workers, its batches, its wall time and the CPU each part used in it."""

    workers: int
    batches: int
    seconds: float
    cores: dict[str, float]
    machine_busy: float
    index_seconds: float = 0.0
    index_milvus_cpu_seconds: float = 0.0

    @property
    def tasks_per_s(self) -> float:
        return self.batches / self.seconds

    @property
    def images_per_s(self) -> float:
        return self.batches * BATCH_SIZE / self.seconds

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "images_per_s": self.images_per_s, "tasks_per_s": self.tasks_per_s}


class Fleet:
    """Worker processes of one environment, grown a few at a time like hosts being added."""

    def __init__(self, env: dict[str, str], log_dir: Path, name: str):
        self.env, self.log_dir, self.name = env, log_dir, name
        self.processes: list[subprocess.Popen[bytes]] = []
        self.control = Celery(broker=env["RIS_REDIS_URL"]).control
        self.queue = env["RIS_QUEUE"]

    def _broadcast(self, command: str) -> None:
        """Tell every worker to stop or start consuming the queue; returns once all answered."""
        count = len(self.processes)
        replies = self.control.broadcast(
            command, arguments={"queue": self.queue}, reply=True, limit=count, timeout=10
        )
        if len(replies) != count:
            raise RuntimeError(f"{command}: {len(replies)} of {count} workers answered")

    def pause(self) -> None:
        self._broadcast("cancel_consumer")

    def resume(self) -> None:
        self._broadcast("add_consumer")

    def grow(self, total: int) -> None:
        """Start workers until there are `total`; returns once every one has warmed up."""
        added = total - len(self.processes)
        if added > 0:
            self.processes += launch_workers(
                self.env,
                added,
                self.log_dir,
                name=f"{self.name}{len(self.processes)}x",
                cwd=REPO,
                ready_markers=("ready.", "BENCHMARK MODE"),
                timeout=300,
                app="bench.standin_worker",
            )
            time.sleep(1.0)  # the pool processes finish opening the collection

    def stop(self) -> None:
        stop_workers(self.processes)
        self.processes = []


class Rig:
    """One Redis and one Milvus standalone, and the timed jobs fleets of workers run on them."""

    def __init__(self, work: Path, redis: LocalRedis, milvus: LocalMilvusServer):
        self.work, self.redis, self.milvus = work, redis, milvus
        self.tracker = JobTracker(connect_redis(redis.url))
        self.index = MilvusIndex(
            milvus.url, COLLECTION, dim=get_model_spec(load_settings().model).dim
        )
        self.index.ensure_collection()
        self.runs = 0
        self.queue_sample = QueueSample()

    def environment(self, hold: float) -> dict[str, str]:
        return {
            **service_environment(self.redis, self.milvus),
            "RIS_COLLECTION": COLLECTION,
            "RIS_QUEUE": QUEUE,
            "RIS_BATCH_SIZE": str(BATCH_SIZE),
            "RIS_WORKER_CONCURRENCY": "1",
            HOLD_VARIABLE: str(hold),
        }

    def run_job(self, fleet: Fleet, batches: int) -> Run:
        """`producer enqueue` of `batches` batches of new files while the workers are paused;
        then all resume at once, timed from the first batch taken to the last counted."""
        self.runs += 1
        root = placeholder_tree(self.work / "images" / f"run{self.runs}", batches * BATCH_SIZE)
        rows_before = self.index.count()
        fleet.pause()
        with CpuSampler() as cpu:
            cpu.watch("redis", self.redis.pid)
            cpu.watch("milvus", self.milvus.pid)
            for process in fleet.processes:
                cpu.watch("workers", process.pid)
            watch = JobWatch(self.redis.url, fleet.queue, on_first=cpu.begin, on_done=cpu.end)
            watch.start()
            _enqueue(root, fleet.env)
            fleet.resume()
            job, seconds = watch.wait(JOB_TIMEOUT)
        self._check(job, batches, rows_before)
        if watch.queue_sample.length > self.queue_sample.length:
            self.queue_sample = watch.queue_sample
        cores = cpu.cores()
        busy = cpu.machine_busy()
        # Everything else on the machine: this benchmark's poller, other people's work.
        cores["others"] = max(0.0, busy * CPUS - sum(cores.values()))
        return Run(len(fleet.processes), batches, seconds, cores, busy, *self._build_index())

    def _check(self, job: str, batches: int, rows_before: int) -> None:
        deadline = time.monotonic() + JOB_TIMEOUT
        while not (status := self.tracker.status(job)) or not status.done:
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job} not flushed within {JOB_TIMEOUT:.0f} s")
            time.sleep(0.2)
        added = self.index.count() - rows_before
        if status.indexed != batches * BATCH_SIZE or added != status.indexed:
            raise RuntimeError(f"job {job}: {status.indexed} indexed, {added} rows added")

    def _build_index(self) -> tuple[float, float]:
        """Wait until Milvus has indexed every sealed segment (a build left running would take
        CPU from the next job): (seconds, Milvus CPU seconds) it took."""
        client = MilvusClient(uri=self.milvus.url)
        deadline = time.monotonic() + INDEX_TIMEOUT
        try:
            with CpuSampler() as cpu:
                cpu.watch("milvus", self.milvus.pid)
                cpu.begin()
                while client.describe_index(COLLECTION, "vector").get("pending_index_rows", 0):
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"Milvus index not built within {INDEX_TIMEOUT:.0f} s")
                    time.sleep(0.5)
                cpu.end()
        finally:
            client.close()
        return cpu.wall, cpu.cpu_seconds()["milvus"]


def _enqueue(root: Path, env: dict[str, str]) -> None:
    """The real producer: scan `root`, skip nothing indexed, send every batch; it exits then."""
    producer = subprocess.run(
        [str(BIN / "producer"), "enqueue", str(root), "--json"],
        env=env,
        capture_output=True,
        timeout=JOB_TIMEOUT,
        check=False,
    )
    if producer.returncode != 0:
        raise RuntimeError(f"producer failed: {producer.stderr.decode(errors='replace')[-300:]}")
