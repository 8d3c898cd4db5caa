"""A job names its collection and model: workers write where the job says, or say why not."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from producer.cli import main as producer
from ris.embedding.models import DEFAULT_MODEL, get_model_spec
from ris.index.milvus import MilvusIndex
from tests.helpers import invoke

pytestmark = pytest.mark.e2e
DIM = get_model_spec(DEFAULT_MODEL).dim


@pytest.fixture
def tree(photos: list[Path], tmp_path: Path) -> Path:
    """A folder of six photos."""
    root = tmp_path / "tree"
    root.mkdir()
    for photo in photos[:6]:
        shutil.copy(photo, root / photo.name)
    return root


def _enqueue(*arguments: str) -> dict:
    options = ("--wait", "--timeout", "180", "--json")
    return json.loads(invoke(producer, "enqueue", *arguments, *options).stdout)


def test_workers_index_into_the_collection_the_job_names(
    ris_env: dict[str, str],
    start_workers,
    collection: str,
    tree: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RIS_BATCH_SIZE", "4")
    # The workers' own setting names another collection than the producer's.
    ris_env["RIS_COLLECTION"] = f"{collection}_workers"
    start_workers(1)
    uri = ris_env["RIS_MILVUS_URI"]
    named = f"{collection}_named"
    names = (collection, named, f"{collection}_workers")
    indexes = [MilvusIndex(uri, name, dim=DIM) for name in names]
    try:
        status = _enqueue(str(tree))
        assert (status["state"], status["indexed"], status["collection"]) == (
            "done",
            6,
            collection,
        )
        assert status["model"] == DEFAULT_MODEL
        assert indexes[0].count() == 6, "the vectors are in the producer's collection"
        # The worker's own collection (prepared at start-up) stays empty.
        assert not indexes[2].exists() or indexes[2].count() == 0

        again = _enqueue(str(tree))
        assert (again["enqueued"], again["skipped"]) == (0, 6), "the re-run finds them indexed"

        elsewhere = _enqueue(str(tree), "--collection", named)
        assert (elsewhere["indexed"], elsewhere["collection"]) == (6, named)
        assert indexes[1].count() == 6
    finally:
        for index in indexes:
            index.drop()


def test_a_batch_for_another_model_fails_with_the_reason_and_is_sent_again_later(
    ris_env: dict[str, str],
    start_workers,
    collection: str,
    tree: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ris_env["RIS_COLLECTION"] = f"{collection}_workers"  # prepared by the worker at start-up
    start_workers(1)  # the default model
    monkeypatch.setenv("RIS_MODEL", "efficientnet-lite0")  # the producer's model differs
    status = _enqueue(str(tree))
    assert (status["state"], status["indexed"], status["failed"]) == ("done", 0, 6)
    reasons = set(status["failures"].values())
    assert len(reasons) == 1
    (reason,) = reasons
    assert f"this worker runs model {DEFAULT_MODEL}" in reason
    assert "enqueued for efficientnet-lite0" in reason
    # Not remembered against the files: once the fleet runs the right model, they are sent.
    again = json.loads(invoke(producer, "enqueue", str(tree), "--json").stdout)
    assert (again["enqueued"], again["skipped"]) == (6, 0)
    for name in (collection, f"{collection}_workers"):
        MilvusIndex(ris_env["RIS_MILVUS_URI"], name, dim=DIM).drop()
