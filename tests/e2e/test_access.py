"""Access control: `query serve` answers only tokens granted its collection; the page asks for
one; `query serve` refuses to listen off loopback without tokens; Milvus with authorization
admits the product's own user and refuses a wrong password in one line."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from click.testing import CliRunner

from query.auth import digest, new_token
from query.cli import main as query
from ris.dev.services import LocalMilvusLite, LocalMilvusServer, LocalQueryService
from ris.embedding.pipeline import EmbeddingPipeline
from ris.files.identity import image_id
from ris.index.base import ImageRecord
from ris.index.milvus import MilvusIndex
from ris_cli.milvus_access import main as milvus_access
from tests.helpers import headless_chromium
from workers.ingest import process_batch

pytestmark = pytest.mark.e2e
COLLECTION = "guarded"


@dataclass
class Guarded:
    url: str
    photos: list[Path]
    allowed: str  # a token for this collection
    elsewhere: str  # a token for another collection only

    def get(self, path: str, token: str | None = None) -> httpx.Response:
        return self.call("GET", path, token)

    def call(self, method: str, path: str, token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=60)

    def duplicate_runs(self, token: str | None = None) -> list[httpx.Response]:
        """Every endpoint of background duplicate runs."""
        return [
            self.call("POST", "/duplicates/runs", token),
            self.call("GET", "/duplicates/runs", token),
            self.call("GET", "/duplicates/runs/0", token),
            self.call("DELETE", "/duplicates/runs/0", token),
        ]

    def search(self, token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        files = {"image": ("q", self.photos[0].read_bytes())}
        return httpx.post(f"{self.url}/search", files=files, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def guarded(
    redis_server,
    milvus_server: LocalMilvusLite,
    photos: list[Path],
    pipeline: EmbeddingPipeline,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Guarded]:
    index = MilvusIndex(milvus_server.url, COLLECTION, dim=pipeline.dim)
    index.drop()
    process_batch([str(photo) for photo in photos[:4]], pipeline, index)
    index.flush()
    allowed, grant = new_token([COLLECTION, "another"])
    elsewhere, other_grant = new_token(["another"])
    env = {
        **os.environ,
        "RIS_REDIS_URL": redis_server.url,
        "RIS_MILVUS_URI": milvus_server.url,
        "RIS_COLLECTION": COLLECTION,
        "RIS_API_TOKENS": f"{grant.entry()}; {other_grant.entry()}",
    }
    server = LocalQueryService(tmp_path_factory.mktemp("guarded"), env).start(timeout=90)
    yield Guarded(server.url, photos[:4], allowed, elsewhere)
    server.stop()
    index.drop()


def test_no_token_is_401_and_health_stays_open(guarded: Guarded) -> None:
    indexed = image_id(guarded.photos[1])
    for response in (
        guarded.search(),
        guarded.get(f"/images/{indexed}"),
        guarded.get(f"/images/{indexed}/thumbnail"),
        guarded.get("/stats"),
        guarded.get("/duplicates"),
        *guarded.duplicate_runs(),
        guarded.search("ris_not-a-token-anyone-was-given"),
    ):
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"
    assert guarded.get("/health").status_code == 200
    assert guarded.get("/").status_code == 200  # the page itself, which asks for a token


def test_a_token_for_another_collection_is_403(guarded: Guarded) -> None:
    indexed = image_id(guarded.photos[1])
    for response in (
        guarded.search(guarded.elsewhere),
        guarded.get(f"/images/{indexed}", guarded.elsewhere),
        guarded.get(f"/images/{indexed}/thumbnail", guarded.elsewhere),
        guarded.get("/duplicates", guarded.elsewhere),
        *guarded.duplicate_runs(guarded.elsewhere),
    ):
        assert response.status_code == 403, response.text
        assert "may not search collection 'guarded'" in response.json()["detail"]


def test_a_token_granted_the_collection_works(guarded: Guarded) -> None:
    response = guarded.search(guarded.allowed)
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["path"] == str(guarded.photos[0])
    original = guarded.get(f"/images/{image_id(guarded.photos[1])}", guarded.allowed)
    assert original.status_code == 200 and original.content == guarded.photos[1].read_bytes()
    assert guarded.get("/stats", guarded.allowed).json()["images"] == 4
    assert guarded.get("/duplicates", guarded.allowed).json()["rows"] == 4


def test_the_page_asks_for_a_token_then_shows_results(guarded: Guarded, tmp_path: Path) -> None:
    with headless_chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(guarded.url)
        page.set_input_files("#file", str(guarded.photos[2]))
        page.wait_for_selector("#auth.shown", timeout=60_000)
        page.fill("#token", guarded.allowed)
        page.click("#auth button")
        page.wait_for_function(
            """() => {
                const images = [...document.querySelectorAll('#grid .hit img')];
                return images.length >= 4 && images.every(i => i.complete && i.naturalWidth > 0);
            }""",
            timeout=60_000,
        )
        first = page.inner_text("#grid .hit .path")
        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    assert first == str(guarded.photos[2])


def test_serving_off_loopback_without_tokens_is_refused(ris_env, monkeypatch) -> None:
    monkeypatch.delenv("RIS_API_TOKENS", raising=False)
    result = CliRunner().invoke(query, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: RIS_API_TOKENS is empty: anyone reaching 0.0.0.0")
    monkeypatch.setenv("RIS_API_TOKENS", "not-a-hash:images")
    result = CliRunner().invoke(query, ["serve"])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "invalid setting RIS_API_TOKENS" in result.output


def test_query_token_prints_a_token_and_its_setting_entry(ris_env) -> None:
    result = CliRunner().invoke(query, ["token", "--collection", "a", "--json"])
    assert result.exit_code == 0, result.output
    made = json.loads(result.stdout)
    assert made["token"].startswith("ris_")
    assert made["entry"] == f"{digest(made['token'])}:a"


@pytest.fixture(scope="module")
def milvus_with_authorization(
    tmp_path_factory: pytest.TempPathFactory, cache_dir: Path
) -> Iterator[LocalMilvusServer]:
    server = LocalMilvusServer(
        tmp_path_factory.mktemp("milvus-auth"), cache_dir / "milvus", authorization=True
    )
    with server:
        yield server  # type: ignore[misc]


def test_the_products_milvus_user_can_do_its_work_and_a_wrong_password_is_one_line(
    milvus_with_authorization: LocalMilvusServer, photos: list[Path], monkeypatch, tmp_path
) -> None:
    uri = milvus_with_authorization.url
    monkeypatch.setenv("RIS_MILVUS_URI", uri)
    monkeypatch.setenv("RIS_MILVUS_TOKEN", "ris:product-secret-1")
    monkeypatch.setenv("RIS_COLLECTION", "authorized")
    root = {"MILVUS_ROOT_PASSWORD": "root-secret-1"}
    granted = CliRunner().invoke(milvus_access, [], env=root)
    assert granted.exit_code == 0, granted.output
    assert "root password changed from the default" in granted.output
    assert "Milvus user ris created" in granted.output
    again = CliRunner().invoke(milvus_access, [], env=root)
    assert again.exit_code == 0 and "changed" not in again.output
    assert "Milvus user ris exists" in again.output

    index = MilvusIndex(uri, "authorized", dim=8, token="ris:product-secret-1")
    vector = np.ones(8, np.float32) / np.sqrt(8)
    index.upsert([ImageRecord(1, "/a.jpg", vector, 1, 1)])
    index.flush()
    assert index.search(vector[None], top_k=1)[0][0].id == 1 and index.count() == 1
    index.drop()
    index.close()

    monkeypatch.setenv("RIS_MILVUS_TOKEN", "ris:wrong-password")
    result = CliRunner().invoke(query, ["search", str(photos[0])])
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    # pymilvus reports a refused sign-in as a failed connection; the message names both.
    assert result.output.startswith(
        f"Error: cannot reach Milvus at {uri} or it refused the credentials (RIS_MILVUS_TOKEN)"
    )
