"""`query audit` on a real collection: every sampled row found first by its vector and its file,
the index's top 10 equal to exact search, unreadable files counted apart."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from query.cli import main as query
from ris.dev.services import LocalMilvusLite
from ris.embedding.pipeline import EmbeddingPipeline
from ris.index.milvus import MilvusIndex
from workers.ingest import process_batch

pytestmark = pytest.mark.e2e


def test_every_indexed_photo_is_found_and_a_gone_file_is_counted_apart(
    redis_server,
    milvus_server: LocalMilvusLite,
    photos: list[Path],
    pipeline: EmbeddingPipeline,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    paths = [str(shutil.copy(photo, folder)) for photo in photos[:12]]
    # The same picture at a second path: the two rows tie, and either first counts as found.
    paths.append(str(shutil.copy(photos[0], folder / "again.jpg")))
    paths.append(str(shutil.copy(photos[12], folder / "soon-gone.jpg")))
    index = MilvusIndex(milvus_server.url, "audited", dim=pipeline.dim)
    index.drop()
    process_batch(paths, pipeline, index)
    index.flush()
    os.unlink(folder / "soon-gone.jpg")
    env = {
        "RIS_REDIS_URL": redis_server.url,
        "RIS_MILVUS_URI": milvus_server.url,
        "RIS_COLLECTION": "audited",
    }
    try:
        result = CliRunner().invoke(query, ["audit", "--sample", "50", "--json"], env=env)
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert (report["rows"], report["sampled"], report["files_unreadable"]) == (14, 14, 1)
        assert report["self_rank1"] == report["self_rank1_by_file"] == 1.0
        assert report["recall_at_10"] == 1.0 and report["unfound"] == []
        table = CliRunner().invoke(query, ["audit", "--sample", "5"], env=env)
        assert table.exit_code == 0, table.output
        assert "rows sampled" in table.stdout and "1.0000" in table.stdout
    finally:
        index.drop()
        index.close()


def test_auditing_a_collection_that_does_not_exist_is_a_one_line_error(ris_env) -> None:
    result = CliRunner().invoke(query, ["audit"])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "does not exist" in result.output
