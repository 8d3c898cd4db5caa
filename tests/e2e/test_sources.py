"""Images by URL: an S3 prefix (moto's S3 server, a separate process) and a list of http URLs
(a local HTTP server) indexed by real workers; re-runs send nothing, a changed object is sent
again, deleted objects are pruned, a 404 and a non-image fail with their reasons."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from producer.cli import main as producer
from query.cli import main as query
from query.service import create_app
from ris.settings import load_settings
from tests.helpers import invoke, set_env

pytestmark = pytest.mark.e2e

BUCKET = "photos"
NOT_AN_IMAGE = "not an image (unrecognised format)"


def _enqueue(*args: str, stdin: str | None = None) -> dict:
    result = CliRunner().invoke(producer, ["enqueue", *args, "--wait", "--json"], input=stdin)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_an_s3_prefix_is_indexed_kept_in_step_and_pruned(
    s3_env, start_workers, photos: list[Path], monkeypatch
) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    for photo in photos[:4]:
        s3.put_object(Bucket=BUCKET, Key=f"set/{photo.name}", Body=photo.read_bytes())
    s3.put_object(Bucket=BUCKET, Key="set/broken.jpg", Body=b"not a picture")
    s3.put_object(Bucket=BUCKET, Key="set/notes.txt", Body=b"not listed: no image extension")
    s3.put_object(Bucket=BUCKET, Key="elsewhere/cat.jpg", Body=photos[5].read_bytes())
    set_env(s3_env, monkeypatch, {"RIS_ALLOWED_ROOTS": f"s3://{BUCKET}/set"})
    start_workers(1)
    root = f"s3://{BUCKET}/set"

    first = _enqueue(root)
    assert (first["indexed"], first["failed"], first["seen"]) == (4, 1, 5)
    assert first["failures"] == {f"{root}/broken.jpg": NOT_AN_IMAGE}

    again = _enqueue(root)  # nothing changed, the failed object included
    assert (again["enqueued"], again["skipped"]) == (0, 5)

    changed = f"{root}/{photos[0].name}"
    s3.put_object(Bucket=BUCKET, Key=f"set/{photos[0].name}", Body=photos[6].read_bytes())
    s3.delete_object(Bucket=BUCKET, Key=f"set/{photos[1].name}")
    third = _enqueue(root)
    assert (third["enqueued"], third["indexed"], third["skipped"]) == (1, 1, 3)

    pruned = json.loads(invoke(producer, "prune", root, "--json").stdout)
    assert pruned["removed"] == [f"{root}/{photos[1].name}"]
    assert pruned["checked"] == 4

    (answer,) = json.loads(invoke(query, "search", str(photos[6]), "--json", "-k", "1").stdout)
    assert answer["results"][0]["path"] == changed
    assert answer["results"][0]["score"] > 0.99

    # The workers read only under RIS_ALLOWED_ROOTS, URL prefixes included.
    outside = _enqueue("--urls", "-", stdin=f"s3://{BUCKET}/elsewhere/cat.jpg\n")
    assert outside["failures"] == {
        f"s3://{BUCKET}/elsewhere/cat.jpg": "outside the allowed roots (RIS_ALLOWED_ROOTS)"
    }


def test_a_list_of_http_urls_is_indexed_with_a_reason_for_each_failure(
    ris_env, start_workers, http_root: tuple[Path, str], photos: list[Path]
) -> None:
    folder, base = http_root
    for photo in photos[:2]:
        shutil.copy(photo, folder / photo.name)
    (folder / "text.jpg").write_text("not a picture")
    urls = [f"{base}/{photo.name}" for photo in photos[:2]]
    missing, text = f"{base}/missing.jpg", f"{base}/text.jpg"
    listing = "\n".join(["# one URL a line", *urls, missing, "", text]) + "\n"
    start_workers(1)

    first = _enqueue("--urls", "-", stdin=listing)
    assert (first["indexed"], first["failed"]) == (2, 2)
    assert first["failures"] == {missing: "not found (404)", text: NOT_AN_IMAGE}

    url_file = folder.parent / "urls.txt"
    url_file.write_text(listing)
    again = _enqueue("--urls", str(url_file))
    assert (again["enqueued"], again["skipped"]) == (0, 4)

    shutil.copy(photos[3], folder / photos[0].name)  # another picture behind the same URL
    third = _enqueue("--urls", str(url_file))
    assert (third["enqueued"], third["indexed"]) == (1, 1)


def test_a_query_image_by_url_and_indexed_objects_served_by_id(
    ris_env, start_workers, http_root: tuple[Path, str], photos: list[Path], monkeypatch
) -> None:
    folder, base = http_root
    for photo in photos[:3]:
        shutil.copy(photo, folder / photo.name)
    urls = [f"{base}/{photo.name}" for photo in photos[:3]]
    start_workers(1)
    assert _enqueue("--urls", "-", stdin="\n".join(urls))["indexed"] == 3

    (answer,) = json.loads(invoke(query, "search", urls[0], "--json", "-k", "1").stdout)
    assert answer["results"][0]["path"] == urls[0]
    assert answer["results"][0]["score"] > 0.99

    with TestClient(create_app(load_settings())) as client:
        found = client.post("/search", data={"url": urls[1], "top_k": "1"})
        assert found.status_code == 200, found.text
        hit = found.json()["results"][0]
        assert hit["path"] == urls[1]
        original = client.get(f"/images/{hit['id']}")
        assert original.status_code == 200
        assert original.content == (folder / photos[1].name).read_bytes()
        assert original.headers["content-type"].startswith("image/")
        thumbnail = client.get(f"/images/{hit['id']}/thumbnail?size=128")
        assert thumbnail.status_code == 200 and thumbnail.content[:2] == b"\xff\xd8"
        gone = client.post("/search", data={"url": f"{base}/missing.jpg"})
        assert gone.status_code == 400 and "not found (404)" in gone.json()["detail"]

    # Size-limited like an upload.
    limit = (folder / photos[2].name).stat().st_size - 1
    monkeypatch.setenv("RIS_MAX_UPLOAD_BYTES", str(limit))
    result = CliRunner().invoke(query, ["search", urls[2], "--json"])
    assert result.exit_code == 1
    assert f"too large: more than {limit} bytes" in result.output
