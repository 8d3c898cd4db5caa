"""The index failing a running worker: a dropped collection is created again; a collection that
refuses every write ends the job with reasons instead of sending its batches round forever."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from pymilvus import DataType

from ris.embedding.models import DEFAULT_MODEL, get_model_spec
from ris.index.milvus import MilvusIndex
from tests.helpers import BIN, copy_photos, launch_workers, stop_workers

pytestmark = pytest.mark.e2e
DIM = get_model_spec(DEFAULT_MODEL).dim


def producer(env: dict[str, str], *args: str, timeout: float = 300) -> dict:
    finished = subprocess.run(
        [str(BIN / "producer"), *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert finished.returncode == 0, finished.stderr
    return dict(json.loads(finished.stdout))


def replace_with_foreign_collection(uri: str, name: str) -> None:
    """Drop the collection and make one of the same name that another program might have:
    the same vector field, none of this product's file fields, no dynamic field."""
    # The product's own client settings: a plain client's keepalive pings make Milvus Lite's
    # server drop the connection ("too_many_pings").
    index = MilvusIndex(uri, name, dim=DIM)
    client = index.client
    client.drop_collection(name)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("note", DataType.VARCHAR, max_length=64)
    vector_index = client.prepare_index_params()
    vector_index.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
    client.create_collection(name, schema=schema, index_params=vector_index)
    index.close()


def test_a_collection_dropped_between_two_jobs_is_created_again_by_the_running_worker(
    ris_env: dict[str, str], photos: list[Path], tmp_path: Path
) -> None:
    first = copy_photos(photos[:12], tmp_path / "first")
    second = copy_photos(photos[12:24], tmp_path / "second")
    workers = launch_workers(ris_env, 1, tmp_path, "drop")
    try:
        assert producer(ris_env, "enqueue", str(tmp_path / "first"), "--wait")["indexed"] == 12
        index = MilvusIndex(ris_env["RIS_MILVUS_URI"], ris_env["RIS_COLLECTION"], dim=DIM)
        index.drop()
        status = producer(ris_env, "enqueue", str(tmp_path / "second"), "--wait", timeout=120)
        assert (status["state"], status["indexed"], status["failed"]) == ("done", 12, 0)
        assert sorted(path for _, path in index.iter_paths("/")) == sorted(second)
        assert not set(first) & {path for _, path in index.iter_paths("/")}
    finally:
        stop_workers(workers)


def test_a_permanent_index_failure_mid_job_ends_the_job_with_reasons(
    ris_env: dict[str, str], photos: list[Path], tmp_path: Path
) -> None:
    env = {**ris_env, "RIS_BATCH_SIZE": "6", "RIS_MODEL_BATCH_SIZE": "1"}
    paths = copy_photos(photos, tmp_path / "data", copies=2)
    workers = launch_workers(env, 1, tmp_path, "refuse")
    enqueue = subprocess.Popen(
        [str(BIN / "producer"), "enqueue", str(tmp_path / "data"), "--wait", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        index = MilvusIndex(env["RIS_MILVUS_URI"], env["RIS_COLLECTION"], dim=DIM)
        wait_until_rows(index, 12)
        replace_with_foreign_collection(env["RIS_MILVUS_URI"], env["RIS_COLLECTION"])
        out, err = enqueue.communicate(timeout=240)
        assert enqueue.returncode == 0, err
        status = json.loads(out)
        assert status["state"] == "done" and status["pending"] == 0
        assert status["indexed"] >= 12 and status["failed"] >= 6
        assert status["indexed"] + status["failed"] == len(paths)
        reasons = set(status["failures"].values())
        assert all(
            reason.startswith("Milvus: ") or "was not made by this product" in reason
            for reason in reasons
        ), reasons
        assert any("was not made by this product" in reason for reason in reasons)
        log = (tmp_path / "refuse-worker-0.log").read_text(errors="replace")
        assert "giving the batch back" not in log
        assert all(worker.poll() is None for worker in workers)
        # The files were not at fault: once the collection is fixed, a re-run sends them again.
        MilvusIndex(env["RIS_MILVUS_URI"], env["RIS_COLLECTION"], dim=DIM).drop()
        again = producer(env, "enqueue", str(tmp_path / "data"))
        assert again["enqueued"] == len(paths)
    finally:
        enqueue.kill()
        stop_workers(workers)


def wait_until_rows(index: MilvusIndex, rows: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while index.count() < rows:
        assert time.monotonic() < deadline, f"fewer than {rows} rows after {timeout:.0f} s"
        time.sleep(0.2)
