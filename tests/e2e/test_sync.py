"""Re-runs and changes: the index follows the tree; failures can be retried; Redis passwords."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from producer.cli import main as producer
from query.cli import main as query
from ris.dev.services import LocalRedis
from ris.embedding.models import DEFAULT_MODEL, get_model_spec
from ris.index.milvus import MilvusIndex
from tests.helpers import invoke, launch_workers, stop_workers

pytestmark = pytest.mark.e2e


def _enqueue(root: Path) -> dict:
    return json.loads(invoke(producer, "enqueue", str(root), "--wait", "--json").stdout)


def _indexed_paths(env: dict[str, str], root: Path) -> list[str]:
    index = MilvusIndex(
        env["RIS_MILVUS_URI"], env["RIS_COLLECTION"], dim=get_model_spec(DEFAULT_MODEL).dim
    )
    return sorted(path for _, path in index.iter_paths(str(root)))


def _tree(root: Path) -> list[str]:
    return sorted(str(path) for path in root.rglob("*") if path.is_file())


def test_the_index_follows_adds_edits_renames_and_deletes(
    ris_env, start_workers, photos: list[Path], tmp_path: Path
) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    for photo in photos[:6]:
        shutil.copy(photo, root / photo.name)
    start_workers(1)
    assert _enqueue(root)["indexed"] == 6

    added = Path(shutil.copy(photos[6], root / "added.jpg"))
    edited = root / photos[0].name
    shutil.copy(photos[7], edited)  # same path, new picture
    os.rename(root / photos[1].name, root / "renamed.jpg")
    (root / photos[2].name).unlink()

    status = _enqueue(root)
    assert (status["indexed"], status["skipped"]) == (3, 3)  # added, edited, renamed
    pruned = json.loads(invoke(producer, "prune", str(root), "--json").stdout)
    assert sorted(pruned["removed"]) == sorted(
        [str(root / photos[1].name), str(root / photos[2].name)]
    )
    assert _indexed_paths(ris_env, root) == _tree(root)
    (answer,) = json.loads(invoke(query, "search", str(photos[7]), "--json", "-k", "1").stdout)
    hits = answer["results"]
    assert hits[0]["path"] == str(edited) and hits[0]["score"] > 0.99
    assert str(added) in _indexed_paths(ris_env, root)

    again = _enqueue(root)
    assert (again["enqueued"], again["skipped"]) == (0, 6)
    assert json.loads(invoke(producer, "prune", str(root), "--json").stdout)["removed"] == []


def test_failures_are_listed_and_retried_after_a_fix(
    ris_env, start_workers, photos: list[Path], tmp_path: Path
) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    shutil.copy(photos[0], root / "good.jpg")
    broken = root / "broken.jpg"
    broken.write_bytes(b"not a picture")
    start_workers(1)
    status = _enqueue(root)
    assert status["failures"] == {str(broken): "not an image (unrecognised format)"}

    table = invoke(producer, "status", status["job"]).stdout
    assert "broken.jpg" in table and "not an image" in table

    shutil.copy(photos[1], broken)
    retried = json.loads(invoke(producer, "retry", status["job"], "--wait", "--json").stdout)
    assert (retried["indexed"], retried["failed"], retried["seen"]) == (1, 0, 1)
    assert _indexed_paths(ris_env, root) == _tree(root)


def test_a_redis_password_in_the_url_works_end_to_end(
    ris_env, photos: list[Path], tmp_path: Path, monkeypatch
) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    for photo in photos[:3]:
        shutil.copy(photo, root / photo.name)
    with LocalRedis(tmp_path / "redis", password="correct horse") as secured:
        assert ":correct horse@" in secured.url
        env = {**ris_env, "RIS_REDIS_URL": secured.url}
        monkeypatch.setenv("RIS_REDIS_URL", secured.url)
        workers = launch_workers(env, 1, tmp_path, "password")
        try:
            assert _enqueue(root)["indexed"] == 3
        finally:
            stop_workers(workers)
        wrong = secured.url.replace("correct horse", "wrong")
        monkeypatch.setenv("RIS_REDIS_URL", wrong)
        result = CliRunner().invoke(producer, ["status"])
        assert result.exit_code == 1
        assert "cannot reach Redis at redis://:***@127.0.0.1" in result.output
        assert "wrong" not in result.output
