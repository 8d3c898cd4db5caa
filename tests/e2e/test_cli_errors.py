"""CLI behaviour at the edges: one-line errors with exit status 1, clean JSON on stdout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from producer.cli import main as producer
from producer.render import follow_job
from query.cli import main as query
from ris.dev.services import free_port
from ris.errors import JobNotFoundError
from ris.index.base import ImageRecord
from ris.index.milvus import MilvusIndex
from ris.jobs.connection import connect_redis
from ris.jobs.tracker import JobTracker
from ris_cli.datasets import main as datasets

pytestmark = pytest.mark.e2e


def _fails_with(command, args: list[str], message: str) -> Result:
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith("Error: "), result.output
    assert message in lines[0], lines[0]
    return result


def test_enqueue_of_a_missing_path(ris_env) -> None:
    _fails_with(producer, ["enqueue", "/no/such/folder"], "/no/such/folder: no such file")


def test_enqueue_to_an_empty_queue_name_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(producer, ["enqueue", str(tmp_path), "--queue", " "])
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--queue': must not be empty" in result.output


def test_search_with_a_missing_query_file(ris_env) -> None:
    _fails_with(query, ["search", "/no/such/cat.jpg"], "/no/such/cat.jpg: no such file")


def test_search_with_a_non_image_query_file(ris_env, index: MilvusIndex, tmp_path: Path) -> None:
    index.upsert([ImageRecord(1, "/a.jpg", np.ones(index.dim, np.float32), 1, 1)])
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture")
    _fails_with(query, ["search", str(notes)], f"{notes}: not an image (unrecognised format)")


def test_search_in_a_missing_collection(ris_env, photos: list[Path]) -> None:
    _fails_with(
        query,
        ["search", str(photos[0])],
        f"collection '{ris_env['RIS_COLLECTION']}' does not exist",
    )


def test_enqueue_with_unreachable_redis(ris_env, monkeypatch, tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    monkeypatch.setenv("RIS_REDIS_URL", url)
    _fails_with(producer, ["enqueue", str(tmp_path)], f"cannot reach Redis at {url}")


def test_status_with_unreachable_redis(ris_env, monkeypatch) -> None:
    monkeypatch.setenv("RIS_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    _fails_with(producer, ["status"], "cannot reach Redis")


def test_search_with_unreachable_milvus(ris_env, monkeypatch, photos: list[Path]) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("RIS_MILVUS_URI", uri)
    _fails_with(query, ["search", str(photos[0])], f"cannot reach Milvus at {uri}")


def test_status_of_an_unknown_job(ris_env) -> None:
    _fails_with(producer, ["status", "0123456789ab"], "no such job: 0123456789ab")


def test_status_before_any_job(ris_env) -> None:
    _fails_with(producer, ["status"], "no jobs yet")


def test_invalid_setting_is_named(ris_env, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RIS_BATCH_SIZE", "lots")
    _fails_with(producer, ["enqueue", str(tmp_path)], "RIS_BATCH_SIZE")


def test_json_output_stays_clean_while_the_model_is_converted(
    ris_env, index: MilvusIndex, photos: list[Path], tmp_path: Path, monkeypatch
) -> None:
    index.upsert([ImageRecord(1, "/a.jpg", np.ones(index.dim, np.float32), 1, 1)])
    monkeypatch.setenv("RIS_CACHE_DIR", str(tmp_path / "empty-cache"))
    result = CliRunner().invoke(query, ["search", str(photos[0]), "--json"])
    assert result.exit_code == 0, result.output
    assert [hit["id"] for hit in json.loads(result.stdout)[0]["results"]] == [1]
    assert list((tmp_path / "empty-cache" / "models").glob("*.onnx"))


def test_a_contact_sheet_that_cannot_be_written(
    ris_env, index: MilvusIndex, photos: list[Path], tmp_path: Path
) -> None:
    index.upsert([ImageRecord(1, str(photos[0]), np.ones(index.dim, np.float32), 1, 1)])
    target = tmp_path / "missing-folder" / "sheet.png"
    _fails_with(query, ["search", str(photos[0]), "--save", str(target)], f"{target}: ")


def test_a_job_record_gone_while_followed_is_a_one_line_error(redis_url: str) -> None:
    with pytest.raises(JobNotFoundError, match="no such job: 0123456789ab"):
        follow_job(JobTracker(connect_redis(redis_url)), "0123456789ab", timeout=5)


def test_an_unknown_dataset_is_a_usage_error() -> None:
    result = CliRunner().invoke(datasets, ["no-such-set"])
    assert result.exit_code == 2 and "'no-such-set' is not one of" in result.output
