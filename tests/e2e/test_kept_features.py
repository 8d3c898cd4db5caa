"""`query features` on a real collection: every picture read once and kept, then known; kept to
`--under`; unreadable files named; and a clear error when no features can be kept."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from query.cli import main as query
from ris.dev.services import LocalMilvusLite
from ris.embedding.pipeline import EmbeddingPipeline
from ris.index.milvus import MilvusIndex
from tests.imagefiles import hard_copy
from workers.ingest import process_batch

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def collection(
    milvus_server: LocalMilvusLite,
    photos: list[Path],
    pipeline: EmbeddingPipeline,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, dict[str, str]]]:
    root = tmp_path_factory.mktemp("kept")
    for folder, chosen in (("a", photos[:4]), ("b", photos[4:6])):
        (root / folder).mkdir()
        for photo in chosen:
            shutil.copy(photo, root / folder / photo.name)
    paths = sorted(str(path) for path in root.rglob("*.*"))
    index = MilvusIndex(milvus_server.url, "kept_features", dim=pipeline.dim)
    index.drop()
    process_batch(paths, pipeline, index)
    index.flush()
    env = {
        **os.environ,
        "RIS_MILVUS_URI": milvus_server.url,
        "RIS_COLLECTION": "kept_features",
        "RIS_FEATURE_CACHE_DIR": str(root.parent / f"{root.name}-features"),
    }
    yield root, env
    index.drop()
    index.close()


def _features(env: dict[str, str], *arguments: str) -> dict:
    result = CliRunner().invoke(query, ["features", "--json", *arguments], env=env)
    assert result.exit_code == 0, result.output
    report: dict = json.loads(result.stdout)
    return report


def test_every_picture_is_read_once_then_known(
    collection: tuple[Path, dict[str, str]], photos: list[Path], tmp_path: Path
) -> None:
    root, env = collection
    env = {**env, "RIS_FEATURE_CACHE_DIR": str(tmp_path / "features")}
    under_b = _features(env, "--under", str(root / "b"))
    assert (under_b["rows"], under_b["already_kept"], under_b["extracted"]) == (2, 0, 2)
    first = _features(env)
    assert (first["rows"], first["already_kept"], first["extracted"]) == (6, 2, 4)
    assert first["unreadable"] == 0 and first["directory"] == str(tmp_path / "features")
    second = _features(env)
    assert (second["rows"], second["already_kept"], second["extracted"]) == (6, 6, 0)
    assert second["cache_bytes"] >= first["cache_bytes"] > 0

    # A search verifies a crop's original from the kept features.
    copy = hard_copy(photos[0], tmp_path)
    result = CliRunner().invoke(query, ["search", str(copy), "--json"], env=env)
    assert result.exit_code == 0, result.output
    (answer,) = json.loads(result.stdout)
    top = answer["results"][0]
    assert top["path"] == str(root / "a" / photos[0].name) and top["verified"]


def test_a_file_gone_since_indexing_is_counted_unreadable(
    collection: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    root, env = collection
    env = {**env, "RIS_FEATURE_CACHE_DIR": str(tmp_path / "features")}
    moved = next((root / "b").iterdir())
    shutil.move(moved, tmp_path / moved.name)
    try:
        report = _features(env, "--under", str(root / "b"))
    finally:
        shutil.move(tmp_path / moved.name, moved)
    assert (report["rows"], report["extracted"], report["unreadable"]) == (2, 2, 1)
    table = CliRunner().invoke(query, ["features", "--under", str(root / "b")], env=env)
    assert table.exit_code == 0 and "already kept" in table.stdout


def test_nothing_kept_when_the_cache_is_turned_off(
    collection: tuple[Path, dict[str, str]],
) -> None:
    _, env = collection
    result = CliRunner().invoke(query, ["features"], env={**env, "RIS_FEATURE_CACHE_GB": "0"})
    assert result.exit_code == 1
    assert "Error: RIS_FEATURE_CACHE_GB is 0: no local features are kept" in result.output
