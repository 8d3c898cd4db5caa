"""Faults with real processes: killed workers, a Redis restart, Ctrl-C, SIGTERM, bad messages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from kombu import Connection

from ris.dev.services import LocalMilvusServer, LocalRedis, LocalService
from ris.embedding.models import DEFAULT_MODEL, get_model_spec
from ris.index.milvus import MilvusIndex
from ris.jobs.connection import connect_redis
from ris.jobs.contract import INGEST_TASK, celery_config
from ris.jobs.tracker import JobStatus, JobTracker
from ris.settings import Settings
from tests.helpers import BIN, copy_photos, launch_workers, stop_workers

pytestmark = pytest.mark.e2e
DIM = get_model_spec(DEFAULT_MODEL).dim


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(0.05)


def run_producer(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(BIN / "producer"), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def latest_job(tracker: JobTracker) -> JobStatus | None:
    jobs = tracker.recent_jobs(1)
    return tracker.status(jobs[0]) if jobs else None


def assert_indexed_exactly_once(index: MilvusIndex, paths: list[str]) -> None:
    index.flush()
    indexed = [path for _, path in index.iter_paths("/")]
    assert len(indexed) == len(set(indexed)), "a path is indexed twice"
    assert sorted(indexed) == paths
    assert index.count() == len(paths)


def _store(env: dict[str, str]) -> MilvusIndex:
    return MilvusIndex(env["RIS_MILVUS_URI"], env["RIS_COLLECTION"], dim=DIM)


def _log_count(log: Path, text: str) -> int:
    return log.read_text(errors="replace").count(text) if log.exists() else 0


def restart_mid_job(
    env: dict[str, str],
    service: LocalService,
    downtime: float,
    paths: list[str],
    tmp_path: Path,
    name: str,
    timeouts: tuple[float, float],
) -> dict:
    """Two workers ingest `tmp_path/data`; `service` goes down for `downtime` s mid-job.

    The job must still finish with every path indexed exactly once and both workers alive.
    """
    workers = launch_workers(env, 2, tmp_path, name)
    try:
        enqueue = enqueue_and_wait_for_two_batches(env, tmp_path / "data", timeout=timeouts[0])
        service.stop()
        time.sleep(downtime)
        service.start()
        status = finished_status(enqueue, timeout=timeouts[1])
        assert (status["indexed"], status["failed"], status["pending"]) == (len(paths), 0, 0)
        assert all(worker.poll() is None for worker in workers)
        assert_indexed_exactly_once(_store(env), paths)
        return status
    finally:
        stop_workers(workers)


def test_a_worker_killed_mid_batch_loses_nothing_and_duplicates_nothing(
    ris_env, photos, tmp_path: Path
) -> None:
    env = {
        **ris_env,
        "RIS_VISIBILITY_TIMEOUT": "10",
        "RIS_BATCH_SIZE": "12",
        "RIS_MODEL_BATCH_SIZE": "1",
    }
    paths = copy_photos(photos, tmp_path / "data", copies=3)
    victim, survivor = launch_workers(env, 2, tmp_path, "kill")
    try:
        enqueue = run_producer(env, "enqueue", str(tmp_path / "data"), "--json")
        assert enqueue.wait(60) == 0, enqueue.stderr.read() if enqueue.stderr else ""
        log = tmp_path / "kill-worker-0.log"
        wait_for(
            lambda: (
                _log_count(log, "received") > _log_count(log, "succeeded")
                and _log_count(log, "succeeded") >= 1
            ),
            120,
            "the victim to be in the middle of a batch",
        )
        os.killpg(victim.pid, signal.SIGKILL)
        tracker = JobTracker(connect_redis(env["RIS_REDIS_URL"]))
        wait_for(lambda: bool((s := latest_job(tracker)) and s.done), 180, "the job to finish")
        status = latest_job(tracker)
        assert status is not None
        assert (status.indexed, status.failed, status.pending) == (len(paths), 0, 0)
        assert survivor.poll() is None
        assert_indexed_exactly_once(_store(env), paths)
    finally:
        stop_workers([victim, survivor])


def test_a_redis_restart_mid_job_loses_nothing(ris_env, photos, tmp_path: Path) -> None:
    paths = copy_photos(photos, tmp_path / "data", copies=3)
    with LocalRedis(tmp_path / "redis", append_only=True) as broker:
        env = {
            **ris_env,
            "RIS_REDIS_URL": broker.url,
            "RIS_VISIBILITY_TIMEOUT": "10",
            # A batch popped at the instant Redis stops is lost by kombu: sent again soon.
            "RIS_LOST_TASK_SECONDS": "4",
            "RIS_BATCH_SIZE": "6",
            "RIS_MODEL_BATCH_SIZE": "1",
        }
        restart_mid_job(env, broker, 3, paths, tmp_path, "restart", (240, 300))


def enqueue_and_wait_for_two_batches(
    env: dict[str, str], root: Path, timeout: float
) -> subprocess.Popen[bytes]:
    """`producer enqueue --wait` in the background, returned once two batches are done."""
    enqueue = run_producer(env, "enqueue", str(root), "--wait", "--json", "--timeout", str(timeout))
    client = redis.Redis.from_url(env["RIS_REDIS_URL"])
    wait_for(
        lambda: int(client.hget(f"ris:job:{_job_id(client)}", "batches_done") or 0) >= 2,
        120,
        "two batches to be done",
    )
    return enqueue


def finished_status(enqueue: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    out, err = enqueue.communicate(timeout=timeout)
    assert enqueue.returncode == 0, err.decode()
    return dict(json.loads(out))


def _job_id(client: redis.Redis) -> str:
    jobs = client.zrevrange("ris:jobs", 0, 0)
    return jobs[0].decode() if jobs else "none"


def test_an_interrupted_producer_run_again_completes_without_duplicates(
    ris_env, photos, tmp_path: Path
) -> None:
    paths = copy_photos(photos, tmp_path / "data", copies=2)
    # A queue bound of one batch holds the producer mid-scan until Ctrl-C arrives.
    env = {**ris_env, "RIS_MAX_QUEUE_LENGTH": "1", "RIS_BATCH_SIZE": "8"}
    first = run_producer(env, "enqueue", str(tmp_path / "data"))
    client = redis.Redis.from_url(env["RIS_REDIS_URL"])
    wait_for(
        lambda: client.llen(env["RIS_QUEUE"] if "RIS_QUEUE" in env else "ris") >= 1,
        60,
        "the first batch",
    )
    time.sleep(0.3)
    first.send_signal(signal.SIGINT)
    assert first.wait(30) == 130
    tracker = JobTracker(connect_redis(env["RIS_REDIS_URL"]))
    interrupted = latest_job(tracker)
    assert interrupted is not None and interrupted.interrupted and interrupted.enqueued == 8
    workers = launch_workers(ris_env, 1, tmp_path, "resume")
    try:
        again = run_producer(ris_env, "enqueue", str(tmp_path / "data"), "--wait", "--json")
        out, err = again.communicate(timeout=300)
        assert again.returncode == 0, err.decode()
        wait_for(
            lambda: bool((s := tracker.status(interrupted.job)) and s.done),
            60,
            "the interrupted job to finish the batch it sent",
        )
        assert_indexed_exactly_once(_store(ris_env), paths)
    finally:
        stop_workers(workers)


def test_a_batch_the_broker_lost_is_sent_again_by_a_worker(ris_env, photos, tmp_path: Path) -> None:
    """What the Redis race in the README's "Nothing lost" leaves behind, made on purpose: one
    batch gone from the queue. A worker finds it missing and sends it again; the job finishes
    by itself, nothing duplicated."""
    env = {
        **ris_env,
        "RIS_BATCH_SIZE": "6",
        "RIS_MODEL_BATCH_SIZE": "1",
        "RIS_LOST_TASK_SECONDS": "2",
    }
    paths = copy_photos(photos, tmp_path / "data", copies=1)
    batches = -(-len(paths) // 6)
    enqueue = run_producer(env, "enqueue", str(tmp_path / "data"), "--wait", "--json")
    client = redis.Redis.from_url(env["RIS_REDIS_URL"])
    queue = env.get("RIS_QUEUE", Settings().queue)
    wait_for(lambda: client.llen(queue) == batches, 60, "every batch to be queued")
    assert client.rpop(queue) is not None
    workers = launch_workers(env, 1, tmp_path, "lost")
    try:
        status = finished_status(enqueue, timeout=180)
    finally:
        stop_workers(workers)
    assert (status["indexed"], status["failed"], status["pending"]) == (len(paths), 0, 0)
    assert_indexed_exactly_once(_store(env), paths)
    assert _log_count(tmp_path / "lost-worker-0.log", "lost by the broker") == 1
    assert client.hlen("ris:sent") == 0


def test_sigterm_lets_a_worker_finish_its_batch(ris_env, photos, tmp_path: Path) -> None:
    env = {**ris_env, "RIS_BATCH_SIZE": "64", "RIS_MODEL_BATCH_SIZE": "1"}
    paths = copy_photos(photos, tmp_path / "data", copies=1)
    (worker,) = launch_workers(env, 1, tmp_path, "term")
    try:
        enqueue = run_producer(env, "enqueue", str(tmp_path / "data"))
        assert enqueue.wait(60) == 0
        log = tmp_path / "term-worker-0.log"
        wait_for(lambda: _log_count(log, "received") >= 1, 60, "the batch to start")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(120) == 0
    finally:
        stop_workers([worker])
    assert _log_count(log, "succeeded") == 1
    status = latest_job(JobTracker(connect_redis(env["RIS_REDIS_URL"])))
    assert status is not None and status.done and status.indexed == len(paths)
    assert_indexed_exactly_once(_store(env), paths)


def test_malformed_messages_become_dead_letters_not_endless_retries(
    ris_env, tmp_path: Path
) -> None:
    (worker,) = launch_workers(ris_env, 1, tmp_path, "dead")
    try:
        settings = Settings(redis_url=ris_env["RIS_REDIS_URL"])
        app = Celery("hostile", set_as_current=False)
        app.conf.update(celery_config(settings))
        app.send_task(INGEST_TASK, args=[{"wrong": "shape"}], queue=settings.queue)
        app.send_task(
            INGEST_TASK,
            args=[{"job": "abcdef123456", "batch": 1, "paths": ["/a.jpg"] * 5000}],
            queue=settings.queue,
        )
        app.send_task("ris.no_such_task", args=[1], queue=settings.queue)
        with Connection(settings.redis_url) as connection:
            headers = {"task": INGEST_TASK, "id": str(uuid.uuid4())}
            for body, content_type in (
                (b"{not json", "application/json"),
                (b"\x80\x04K\x01.", "application/x-python-serialize"),
            ):
                connection.Producer().publish(
                    body,
                    routing_key=settings.queue,
                    exchange="",
                    headers=headers,
                    content_type=content_type,
                    content_encoding="binary",
                )
        tracker = JobTracker(connect_redis(settings.redis_url))
        wait_for(lambda: len(tracker.dead_letters()) >= 5, 60, "five dead letters")
        reasons = sorted(entry["reason"] for entry in tracker.dead_letters())
        assert len(reasons) == 5
        assert any("invalid job id" in r or "unknown payload keys" in r for r in reasons)
        assert any("too many paths: 5000" in r for r in reasons)
        assert any("unknown task 'ris.no_such_task'" in r for r in reasons)
        assert any("undecodable message (application/json)" in r for r in reasons)
        assert any("untrusted content of type pickle" in r for r in reasons)
        client = redis.Redis.from_url(settings.redis_url)
        assert client.llen(settings.queue) == 0 and client.hlen("unacked") == 0
        assert worker.poll() is None
    finally:
        stop_workers([worker])


def test_a_milvus_outage_mid_job_is_ridden_out_with_nothing_failed(
    ris_env, photos, tmp_path: Path, cache_dir: Path
) -> None:
    paths = copy_photos(photos, tmp_path / "data", copies=3)
    milvus = LocalMilvusServer(tmp_path / "milvus", cache_dir / "milvus").start()
    env = {
        **ris_env,
        "RIS_MILVUS_URI": milvus.url,
        "RIS_BATCH_SIZE": "6",
        "RIS_MODEL_BATCH_SIZE": "1",
    }
    try:
        status = restart_mid_job(env, milvus, 20, paths, tmp_path, "outage", timeouts=(400, 400))
        assert status["failures"] == {}
    finally:
        milvus.stop()
