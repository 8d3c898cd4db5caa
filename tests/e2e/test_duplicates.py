"""`query duplicates` and `GET /duplicates` on a real collection whose groups are made here:
exactly those groups, the largest picture first, `--under` kept to its folder, none where there
are none, and the web page's duplicates view."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from PIL import Image, ImageEnhance, ImageOps

from query.cli import main as query
from query.schemas import CliDuplicateGroup, HttpDuplicateRun, HttpDuplicatesResponse
from ris.dev.services import LocalMilvusLite, LocalQueryService
from ris.embedding.pipeline import EmbeddingPipeline
from ris.index.milvus import MilvusIndex
from ris_api import Client
from tests.helpers import headless_chromium
from workers.ingest import process_batch

pytestmark = pytest.mark.e2e
UNIQUE = 10


@dataclass
class Collection:
    env: dict[str, str]
    root: Path
    groups: set[frozenset[str]]
    originals: dict[frozenset[str], str]


def _copies(photo: Path, folder: Path, stem: str) -> list[Path]:
    """The photo, a half-size re-encoded copy and a mirrored, brightened JPEG 40 copy."""
    original = Path(shutil.copy(photo, folder / f"{stem}.jpg"))
    with Image.open(photo) as image:
        rgb = image.convert("RGB")
    half = folder / f"{stem}-half.jpg"
    rgb.resize((rgb.width // 2, rgb.height // 2)).save(half, quality=80)
    flipped = folder / f"{stem}-flipped.jpg"
    ImageEnhance.Brightness(ImageOps.mirror(rgb)).enhance(1.3).save(flipped, quality=40)
    return [original, half, flipped]


def _crop(photo: Path, destination: Path) -> Path:
    """A third of the picture (the middle of it), saturated, re-encoded."""
    with Image.open(photo) as image:
        rgb = image.convert("RGB")
    box = (rgb.width // 5, rgb.height // 5, rgb.width * 4 // 5, rgb.height * 3 // 4)
    ImageEnhance.Color(rgb.crop(box)).enhance(1.6).save(destination, quality=60)
    return destination


def _ingest(server: LocalMilvusLite, name: str, paths: list[Path], pipeline) -> MilvusIndex:
    index = MilvusIndex(server.url, name, dim=pipeline.dim)
    index.drop()
    process_batch([str(path) for path in paths], pipeline, index)
    index.flush()
    return index


@pytest.fixture(scope="module")
def collection(
    redis_server,
    milvus_server: LocalMilvusLite,
    photos: list[Path],
    pipeline: EmbeddingPipeline,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Collection]:
    root = tmp_path_factory.mktemp("duplicates")
    (root / "a").mkdir()
    (root / "b").mkdir()
    first = _copies(photos[0], root / "a", "first")
    second = [
        Path(shutil.copy(photos[1], root / "a" / "second.jpg")),
        _crop(photos[1], root / "a" / "second-crop.jpg"),
        Path(shutil.copy(photos[1], root / "b" / "second-again.jpg")),
    ]
    unique = [Path(shutil.copy(p, root / "a" / p.name)) for p in photos[2 : 2 + UNIQUE]]
    index = _ingest(milvus_server, "duplicates", first + second + unique, pipeline)
    env = {
        **os.environ,
        "RIS_REDIS_URL": redis_server.url,
        "RIS_MILVUS_URI": milvus_server.url,
        "RIS_COLLECTION": "duplicates",
    }
    groups = {frozenset(map(str, first)), frozenset(map(str, second))}
    # The first of each is the largest picture; of the two identical ones, the shorter path.
    originals = {
        frozenset(map(str, first)): str(first[0]),
        frozenset(map(str, second)): str(second[0]),
    }
    yield Collection(env, root, groups, originals)
    index.drop()
    index.close()


def _run(collection: Collection, *arguments: str) -> list[dict]:
    result = CliRunner().invoke(query, ["duplicates", "--json", *arguments], env=collection.env)
    assert result.exit_code == 0, result.output
    return [
        CliDuplicateGroup.model_validate(group).model_dump() for group in json.loads(result.stdout)
    ]


def test_the_cli_finds_exactly_the_groups_made_and_the_largest_first(
    collection: Collection,
) -> None:
    groups = _run(collection)
    found = {frozenset(image["path"] for image in group["images"]) for group in groups}
    assert found == collection.groups
    for group in groups:
        images = group["images"]
        assert images[0]["path"] == collection.originals[frozenset(i["path"] for i in images)]
        assert images[0]["score"] == 1.0 and all(i["score"] < 1.0001 for i in images)
        assert all(i["width"] and i["height"] for i in images)
    assert [group["group"] for group in groups] == [1, 2]


def test_under_keeps_to_its_folder(collection: Collection) -> None:
    groups = _run(collection, "--under", str(collection.root / "a"))
    found = {frozenset(image["path"] for image in group["images"]) for group in groups}
    assert found == {
        frozenset(path for path in group if "/a/" in path) for group in collection.groups
    }
    assert _run(collection, "--under", str(collection.root / "b")) == []


def test_shared_features_find_the_crop_whatever_its_score(collection: Collection) -> None:
    """At a minimum score no crop reaches, the crop joins its original only through the local
    features they share; the identical files join by score either way."""
    crop = str(collection.root / "a" / "second-crop.jpg")
    for flag, joined in (("--no-shared-features", False), ("--shared-features", True)):
        groups = _run(collection, "--min-score", "0.99", flag)
        found = [{image["path"] for image in group["images"]} for group in groups]
        assert any(str(collection.root / "a" / "second.jpg") in group for group in found)
        assert any(crop in group for group in found) == joined, flag
        assert all(group <= true for group in found for true in collection.groups if group & true)


def test_score_alone_groups_only_close_copies(collection: Collection) -> None:
    groups = _run(collection, "--no-verify")
    found = [frozenset(image["path"] for image in group["images"]) for group in groups]
    # Every group lies within a true one; the identical files are always together.
    assert all(any(group <= true for true in collection.groups) for group in found)
    identical = {
        str(collection.root / "a" / "second.jpg"),
        str(collection.root / "b" / "second-again.jpg"),
    }
    assert any(identical <= group for group in found)


def test_contact_sheets_one_per_group(collection: Collection, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        query, ["duplicates", "--save", str(tmp_path / "sheets")], env=collection.env
    )
    assert result.exit_code == 0, result.output
    assert "2 groups of near-duplicates among 16 images" in result.stdout
    assert "pictures read" in result.stdout and "known from an earlier run" in result.stdout
    sheets = sorted((tmp_path / "sheets").iterdir())
    assert [sheet.name for sheet in sheets] == ["group-0001.png", "group-0002.png"]
    with Image.open(sheets[0]) as sheet:
        assert sheet.size == (3 * 220, 220 + 34)


def test_a_collection_without_duplicates_has_no_groups(
    milvus_server: LocalMilvusLite, photos: list[Path], pipeline: EmbeddingPipeline
) -> None:
    index = _ingest(milvus_server, "no_duplicates", photos[2 : 2 + UNIQUE], pipeline)
    try:
        env = {"RIS_MILVUS_URI": milvus_server.url, "RIS_COLLECTION": "no_duplicates"}
        result = CliRunner().invoke(query, ["duplicates", "--json"], env=env)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == []
    finally:
        index.drop()
        index.close()


def test_the_http_api_and_the_page_show_the_same_groups(
    collection: Collection, tmp_path: Path
) -> None:
    # Its own feature cache: the first request reads the pictures, the second knows them.
    env = {**collection.env, "RIS_FEATURE_CACHE_DIR": str(tmp_path / "features")}
    server = LocalQueryService(tmp_path / "serve", env).start(timeout=90)
    try:
        bodies = []
        for _ in range(2):
            response = httpx.get(f"{server.url}/duplicates", timeout=120)
            assert response.status_code == 200, response.text
            bodies.append(body := HttpDuplicatesResponse.model_validate(response.json()))
            found = {frozenset(image.path for image in group.images) for group in body.groups}
            assert found == collection.groups and body.rows == 16 and body.verify
            assert all(isinstance(i.id, str) for group in body.groups for i in group.images)
        first, second = bodies
        assert first.read_pictures >= 6 and first.cached_pictures == 0
        assert (second.read_pictures, second.cached_pictures) == (0, first.read_pictures)
        assert second.groups == first.groups and second.accepted_pairs == first.accepted_pairs
        under = httpx.get(
            f"{server.url}/duplicates", params={"under": str(collection.root / "b")}, timeout=120
        )
        assert under.status_code == 200 and under.json()["groups"] == []
        # Pairs sharing local features are proposed by default in a collection this small.
        assert first.shared_feature_pairs > 0
        vectors_only = httpx.get(
            f"{server.url}/duplicates", params={"shared_features": "false"}, timeout=120
        )
        assert vectors_only.status_code == 200 and vectors_only.json()["shared_feature_pairs"] == 0
        assert {
            frozenset(image["path"] for image in group["images"])
            for group in vectors_only.json()["groups"]
        } == collection.groups
        # In the background: the same run for the same request, another queued behind it and
        # cancelled before it starts, the groups once done.
        started = httpx.post(f"{server.url}/duplicates/runs", timeout=30)
        assert started.status_code == 202, started.text
        run = HttpDuplicateRun.model_validate(started.json())
        assert run.state in ("queued", "running") and run.result is None
        assert httpx.post(f"{server.url}/duplicates/runs", timeout=30).json()["id"] == run.id
        other = httpx.post(
            f"{server.url}/duplicates/runs",
            params={"under": str(collection.root / "b")},
            timeout=30,
        ).json()
        assert other["id"] != run.id and other["under"] == str(collection.root / "b")
        assert httpx.delete(f"{server.url}/duplicates/runs/{other['id']}", timeout=30).is_success
        done = _finished(server.url, run.id)
        assert done.state == "done" and done.result is not None and done.error == ""
        assert done.result.groups == first.groups and done.stage and done.seconds > 0
        assert _finished(server.url, other["id"]).state == "cancelled"
        listed = httpx.get(f"{server.url}/duplicates/runs", timeout=30).json()
        assert [listed[0]["id"], listed[1]["id"]] == [other["id"], run.id]
        assert all(kept["result"] is None for kept in listed)
        assert httpx.get(f"{server.url}/duplicates/runs/nope", timeout=30).status_code == 404
        with headless_chromium() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(server.url)
            page.click("#findDuplicates")
            page.wait_for_function(
                """() => {
                    const images = [...document.querySelectorAll('#grid .group .hit img')];
                    return images.length === 6
                        && images.every(i => i.complete && i.naturalWidth > 0);
                }""",
                timeout=120_000,
            )
            rows = page.locator("#grid .group").count()
            page.screenshot(path=str(tmp_path / "duplicates.png"), full_page=True)
        assert rows == 2
    finally:
        server.stop()


def _finished(url: str, run_id: str, timeout: float = 120) -> HttpDuplicateRun:
    """The background run once it has ended, polled as the page polls it."""
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(f"{url}/duplicates/runs/{run_id}", timeout=30)
        assert response.status_code == 200, response.text
        run = HttpDuplicateRun.model_validate(response.json())
        if run.state not in ("queued", "running") or time.monotonic() > deadline:
            return run
        time.sleep(0.2)


def test_the_python_client_finds_the_same_groups_and_reports_progress(
    collection: Collection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in collection.env.items():
        if name.startswith("RIS_"):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("RIS_FEATURE_CACHE_DIR", str(tmp_path / "features"))
    stages: list[str] = []
    with Client() as client:
        report = client.duplicates(on_progress=lambda stage, done, total: stages.append(stage))
        found = {frozenset(image.path for image in group.images) for group in report.groups}
        assert found == collection.groups and report.rows == 16
        assert "verifying" in stages and report.read_pictures >= 6
        # Its features kept as the CLI keeps them: the next run reads none of them again.
        again = client.duplicates(under=collection.root / "a")
        assert again.rows == 15 and again.read_pictures == 0 and again.cached_pictures > 0
        assert {frozenset(image.path for image in group.images) for group in again.groups} == {
            group - {str(collection.root / "b" / "second-again.jpg")} for group in found
        }
