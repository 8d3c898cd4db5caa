"""Routing: a job sent with `--queue` is ingested by the workers on that queue, and only by them."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import redis

from producer.cli import main as producer
from tests.helpers import invoke

pytestmark = pytest.mark.e2e


def test_a_job_sent_to_a_queue_is_ingested_by_the_workers_on_that_queue(
    ris_env, start_workers, photos: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    for photo in photos[:6]:
        shutil.copy(photo, root / photo.name)
    broken = root / "broken.jpg"
    broken.write_bytes(b"not a picture")
    monkeypatch.setenv("RIS_BATCH_SIZE", "4")
    ris_env["RIS_QUEUE"] = "gpu-test"  # the only worker consumes gpu-test, not the default queue
    start_workers(1)
    worker_log = tmp_path / "w0-worker-0.log"
    broker = redis.Redis.from_url(ris_env["RIS_REDIS_URL"])

    def routed(*command: str) -> dict:
        options = ("--queue", "gpu-test", "--wait", "--timeout", "120", "--json")
        return json.loads(invoke(producer, *command, *options).stdout)

    status = routed("enqueue", str(root))
    assert (status["state"], status["indexed"], status["failed"]) == ("done", 6, 1)
    assert f"job {status['job']} batch 2" in worker_log.read_text()

    shutil.copy(photos[6], broken)
    retried = routed("retry", status["job"])
    assert (retried["state"], retried["indexed"], retried["failed"]) == ("done", 1, 0)
    assert broker.llen("ris") == broker.llen("gpu-test") == 0

    # Without --queue a job goes to RIS_QUEUE (default "ris"), which that worker never touches.
    sent = json.loads(invoke(producer, "enqueue", str(root), "--force", "--json").stdout)
    assert sent["batches"] == 2
    time.sleep(2)
    assert (broker.llen("ris"), broker.llen("gpu-test")) == (2, 0)
    assert sent["job"] not in worker_log.read_text()
