"""End to end as a user runs it: producer -> Redis -> two worker processes -> Milvus -> query."""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from producer.cli import main as producer
from query.cli import main as query
from ris.dev.services import LocalMilvusLite, LocalRedis
from ris.embedding.models import DEFAULT_MODEL, get_model_spec
from ris.embedding.pipeline import EmbeddingPipeline
from ris.index.milvus import MilvusIndex
from ris.search.image_search import ImageSearch
from ris.settings import Settings
from tests.helpers import launch_workers, stop_workers
from tests.imagefiles import edited_copies, hard_copy

pytestmark = pytest.mark.e2e


@dataclass
class IndexedDataset:
    env: dict[str, str]
    root: Path
    photos: list[Path]
    corrupt: Path
    not_an_image: Path
    job: str
    index: MilvusIndex
    logs: Path


def _invoke(command, args: list[str], env: dict[str, str]):
    result = CliRunner().invoke(command, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def indexed(
    redis_server: LocalRedis,
    milvus_server: LocalMilvusLite,
    photos: list[Path],
    model_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[IndexedDataset]:
    """Real photos plus a corrupt file and a non-image, enqueued to two worker processes."""
    redis.Redis.from_url(redis_server.url).flushall()
    root = tmp_path_factory.mktemp("dataset")
    copies = []
    for number, photo in enumerate(photos):
        target = root / f"album{number % 3}" / photo.name
        target.parent.mkdir(exist_ok=True)
        copies.append(Path(shutil.copy(photo, target)))
    corrupt = root / "album0" / "corrupt.jpg"
    corrupt.write_bytes(photos[0].read_bytes()[:500])
    not_an_image = root / "album1" / "notes.png"
    not_an_image.write_text("shopping list: milk, eggs")
    collection = f"e2e_{uuid.uuid4().hex[:8]}"
    env = {
        "RIS_REDIS_URL": redis_server.url,
        "RIS_MILVUS_URI": milvus_server.url,
        "RIS_COLLECTION": collection,
        "RIS_BATCH_SIZE": "8",
    }
    logs = tmp_path_factory.mktemp("logs")
    workers = launch_workers({**os.environ, **env}, 2, logs, "e2e")
    try:
        result = _invoke(
            producer, ["enqueue", str(root), "--wait", "--timeout", "300", "--json"], env
        )
        status = json.loads(result.stdout)
        index = MilvusIndex(milvus_server.url, collection, dim=get_model_spec(DEFAULT_MODEL).dim)
        yield IndexedDataset(env, root, copies, corrupt, not_an_image, status["job"], index, logs)
        index.drop()
    finally:
        stop_workers(workers)


def test_every_image_is_indexed_and_every_bad_file_reported(indexed: IndexedDataset) -> None:
    result = _invoke(producer, ["status", indexed.job, "--json"], indexed.env)
    status = json.loads(result.stdout)
    assert status["state"] == "done"
    assert status["indexed"] == len(indexed.photos) >= 30
    assert status["failed"] == 2
    assert status["indexed"] + status["failed"] + status["skipped"] == status["seen"]
    assert status["pending"] == 0
    assert status["failures"] == {
        str(indexed.corrupt): status["failures"][str(indexed.corrupt)],
        str(indexed.not_an_image): "not an image (unrecognised format)",
    }
    assert status["failures"][str(indexed.corrupt)].startswith("corrupt image")
    assert indexed.index.count() == len(indexed.photos)


def test_each_worker_logs_the_runtime_it_chose_and_why(indexed: IndexedDataset) -> None:
    for log in sorted(indexed.logs.glob("e2e-worker-*.log")):
        text = log.read_text()
        assert re.search(r"inference on (onnxruntime|openvino)/(f32|bf16): \S", text), text[-2000:]
        assert "quality gate" in text or "reference runtime" in text


def test_query_search_finds_each_photo_itself_at_rank_one(indexed: IndexedDataset) -> None:
    for photo in indexed.photos:
        result = _invoke(query, ["search", str(photo), "--top-k", "3", "--json"], indexed.env)
        (answer,) = json.loads(result.stdout)
        assert answer["query"] == str(photo) and set(answer["timings_ms"]) == {
            "embed",
            "search",
            "verify",
            "total",
        }
        hits = answer["results"]
        assert [set(hit) for hit in hits] == [
            {"rank", "id", "path", "score", "inliers", "verified"}
        ] * 3
        assert hits[0]["path"] == str(photo), hits
        assert hits[0]["score"] > 0.99
        assert [hit["rank"] for hit in hits] == [1, 2, 3]


def test_query_search_prints_a_table(indexed: IndexedDataset) -> None:
    result = _invoke(query, ["search", str(indexed.photos[0]), "-k", "2"], indexed.env)
    assert "rank" in result.stdout and "score" in result.stdout
    assert "1.0000" in result.stdout


def test_query_search_shows_the_verified_original_of_a_crop(
    indexed: IndexedDataset, tmp_path: Path
) -> None:
    copy = hard_copy(indexed.photos[0], tmp_path)
    result = _invoke(query, ["search", str(copy), "-k", "3", "--json"], indexed.env)
    first = json.loads(result.stdout)[0]["results"][0]
    assert first["path"] == str(indexed.photos[0]) and first["verified"]
    table = _invoke(query, ["search", str(copy), "-k", "3"], indexed.env).stdout
    assert "local matches" in table and "verified" in table


def test_edited_copies_find_their_original_at_rank_one(
    indexed: IndexedDataset, model_path: Path, tmp_path: Path
) -> None:
    settings = Settings()
    pipeline = EmbeddingPipeline(settings, model_path=model_path)
    search = ImageSearch(pipeline, indexed.index, settings.verify_top, settings.max_pixels)
    misses = []
    for photo in indexed.photos:
        for edit, copy in edited_copies(photo, tmp_path).items():
            best = search(str(copy), top_k=1).results[0]
            if best.path != str(photo):
                misses.append((photo.name, edit, Path(best.path).name, round(best.score, 3)))
    assert not misses


def test_enqueueing_again_adds_nothing(indexed: IndexedDataset) -> None:
    before = indexed.index.count()
    result = _invoke(producer, ["enqueue", str(indexed.root), "--wait", "--json"], indexed.env)
    status = json.loads(result.stdout)
    assert status["state"] == "done"
    assert status["enqueued"] == 0  # unchanged, indexed or known to fail: nothing is resent
    assert status["skipped"] == len(indexed.photos) + 2
    assert indexed.index.count() == before


def test_forced_re_embedding_replaces_rows_without_duplicating(indexed: IndexedDataset) -> None:
    before = indexed.index.count()
    result = _invoke(
        producer, ["enqueue", str(indexed.root), "--force", "--wait", "--json"], indexed.env
    )
    status = json.loads(result.stdout)
    assert status["indexed"] == len(indexed.photos) and status["failed"] == 2
    assert status["skipped"] == 0
    assert indexed.index.count() == before
