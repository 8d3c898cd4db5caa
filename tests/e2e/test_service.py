"""`query serve` as a running process on a real collection: search, images, limits, health."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from PIL import Image

from query.cli import main as query
from ris.dev.services import LocalMilvusLite, LocalQueryService
from ris.embedding.models import DEFAULT_MODEL, get_model_spec
from ris.embedding.pipeline import EmbeddingPipeline
from ris.files.identity import image_id
from ris.index.milvus import MilvusIndex
from ris.settings import Settings
from tests.helpers import headless_chromium
from tests.imagefiles import hard_copy, png_declaring_size
from workers.ingest import process_batch

pytestmark = pytest.mark.e2e
UPLOAD_LIMIT = 3 * 2**20


@dataclass
class Service:
    url: str
    photos: list[Path]
    env: dict[str, str]

    def search(self, data: bytes, top_k: int = 5) -> httpx.Response:
        return httpx.post(
            f"{self.url}/search",
            files={"image": ("q", data)},
            data={"top_k": str(top_k)},
            timeout=60,
        )


@pytest.fixture(scope="module")
def service(
    redis_server,
    milvus_server: LocalMilvusLite,
    photos: list[Path],
    model_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Service]:
    indexed = photos[:12]
    collection = "service"
    index = MilvusIndex(milvus_server.url, collection, dim=get_model_spec(DEFAULT_MODEL).dim)
    index.drop()
    process_batch([str(p) for p in indexed], EmbeddingPipeline(Settings(), model_path), index)
    index.flush()
    env = {
        **os.environ,
        "RIS_REDIS_URL": redis_server.url,
        "RIS_MILVUS_URI": milvus_server.url,
        "RIS_COLLECTION": collection,
        "RIS_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
        # Its own: other tests keep features of the same photos under the same ids.
        "RIS_FEATURE_CACHE_DIR": str(tmp_path_factory.mktemp("features")),
    }
    server = LocalQueryService(tmp_path_factory.mktemp("serve"), env).start(timeout=90)
    yield Service(server.url, indexed, env)
    server.stop()
    index.drop()


def test_search_returns_the_indexed_original_first(service: Service) -> None:
    for photo in service.photos[:4]:
        response = service.search(photo.read_bytes())
        assert response.status_code == 200, response.text
        body = response.json()
        best = body["results"][0]
        assert best["path"] == str(photo) and best["score"] > 0.99
        assert best["id"] == str(image_id(photo))
        assert body["timings_ms"]["total"] >= body["timings_ms"]["embed"] > 0


def test_images_are_served_by_id_only(service: Service) -> None:
    photo = service.photos[0]
    original = httpx.get(f"{service.url}/images/{image_id(photo)}")
    assert original.status_code == 200 and original.content == photo.read_bytes()
    thumbnail = httpx.get(f"{service.url}/images/{image_id(photo)}/thumbnail?size=128")
    assert thumbnail.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumbnail.content)).size) <= 128
    assert httpx.get(f"{service.url}/images/12345").status_code == 404
    assert httpx.get(f"{service.url}/images/..%2F..%2Fetc%2Fpasswd").status_code in (404, 422)


@pytest.mark.parametrize(
    ("data", "status", "reason"),
    [
        (b"", 400, "empty upload"),
        (b"just some text", 400, "not an image"),
        (png_declaring_size(30000, 30000), 400, "too many pixels"),
        (os.urandom(UPLOAD_LIMIT + 1), 413, "larger than the limit"),
    ],
)
def test_bad_uploads_get_a_reason_and_the_service_keeps_serving(
    service: Service, data: bytes, status: int, reason: str
) -> None:
    response = service.search(data)
    assert response.status_code == status and reason in response.json()["detail"]
    assert service.search(service.photos[1].read_bytes()).status_code == 200


def test_concurrent_searches_are_all_answered_right(service: Service) -> None:
    photos = service.photos[:8]
    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda p: service.search(p.read_bytes()), photos))
    assert [r.json()["results"][0]["path"] for r in responses] == [str(p) for p in photos]


def test_health_stats_and_page(service: Service) -> None:
    health = httpx.get(f"{service.url}/health").json()
    assert health == {"healthy": True, "redis": True, "milvus": True}
    stats = httpx.get(f"{service.url}/stats").json()
    assert stats["images"] == len(service.photos) and stats["collection"] == "service"
    page = httpx.get(service.url)
    assert page.status_code == 200 and "Drop an image here" in page.text


def test_stats_count_the_features_a_verifying_search_keeps(
    service: Service, tmp_path: Path
) -> None:
    before = httpx.get(f"{service.url}/stats").json()["kept_features"]
    copy = hard_copy(service.photos[0], tmp_path)
    best = service.search(copy.read_bytes()).json()["results"][0]
    assert best["path"] == str(service.photos[0]) and best["verified"]
    after = httpx.get(f"{service.url}/stats").json()["kept_features"]
    assert after["entries"] > before["entries"] and after["bytes"] > 0


def test_contact_sheet_has_the_query_and_every_result(
    service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("RIS_REDIS_URL", "RIS_MILVUS_URI", "RIS_COLLECTION"):
        monkeypatch.setenv(name, service.env[name])
    sheet = tmp_path / "results.png"
    result = CliRunner().invoke(
        query, ["search", str(service.photos[2]), "-k", "5", "--save", str(sheet)]
    )
    assert result.exit_code == 0, result.output
    with Image.open(sheet) as image:
        assert image.format == "PNG"
        assert image.size == (6 * 220, 220 + 34)  # query + 5 results in one row of tiles


def test_the_page_shows_results_for_an_uploaded_image(service: Service, tmp_path: Path) -> None:
    """Real headless Chromium: choose a file, wait for the grid, look at it."""
    query = service.photos[3]
    with headless_chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(service.url)
        page.set_input_files("#file", str(query))
        page.wait_for_function(
            """() => {
                const images = [...document.querySelectorAll('#grid .hit img')];
                return images.length >= 5
                    && images.slice(0, 5).every(i => i.complete && i.naturalWidth > 0);
            }""",
            timeout=60_000,
        )
        first = page.inner_text("#grid .hit .path")
        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        # A filter control searches again: at a minimum score of 0.99 only the photo itself.
        page.fill("#minScore", "0.99")
        page.dispatch_event("#minScore", "change")
        page.wait_for_function(
            "() => document.querySelectorAll('#grid .hit').length === 1", timeout=60_000
        )
        only = page.inner_text("#grid .hit .path")
        page.screenshot(path=str(tmp_path / "filtered.png"), full_page=True)
    assert first == str(query) and only == str(query)
    assert (tmp_path / "page.png").stat().st_size > 10_000
