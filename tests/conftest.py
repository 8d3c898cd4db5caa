"""Fixtures: real Redis and Milvus Lite servers on free ports, the real model, real photos."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from ris.convert.export import ensure_onnx_model
from ris.datasets.samples import imagenet_photos, sample_photos
from ris.dev.services import LocalMilvusLite, LocalMilvusServer, LocalRedis, LocalS3
from ris.embedding.models import DEFAULT_MODEL, get_model_spec
from ris.embedding.pipeline import EmbeddingPipeline
from ris.index.milvus import MilvusIndex
from ris.settings import Settings
from tests.helpers import launch_workers, set_env, stop_workers


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    """The user's cache: the converted model and the sample photos survive between runs."""
    return Settings().cache_dir


@pytest.fixture(scope="session", autouse=True)
def feature_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Local features `query duplicates` keeps go to the session's own folder, not the
    user's cache: each run starts without them."""
    directory = tmp_path_factory.mktemp("features")
    previous = os.environ.get("RIS_FEATURE_CACHE_DIR")
    os.environ["RIS_FEATURE_CACHE_DIR"] = str(directory)
    yield directory
    if previous is None:
        del os.environ["RIS_FEATURE_CACHE_DIR"]
    else:
        os.environ["RIS_FEATURE_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedis]:
    with LocalRedis(tmp_path_factory.mktemp("redis")) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def redis_url(redis_server: LocalRedis) -> Iterator[str]:
    """An empty Redis database, flushed before and after the test."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield redis_server.url
    client.flushall()
    client.close()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalS3]:
    """moto's S3 server, a separate process on a free loopback port."""
    with LocalS3(tmp_path_factory.mktemp("s3")) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def s3_env(
    s3_server: LocalS3, ris_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The test's services and the S3 server's standard AWS variables, here and for workers."""
    set_env(ris_env, monkeypatch, s3_server.client_environment())
    return ris_env


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on a free loopback port: (folder, its base URL)."""
    folder = tmp_path / "www"
    folder.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMilvusLite]:
    with LocalMilvusLite(tmp_path_factory.mktemp("milvus")) as server:
        yield server  # type: ignore[misc]


@pytest.fixture(scope="session")
def milvus_standalone(
    tmp_path_factory: pytest.TempPathFactory, cache_dir: Path
) -> Iterator[LocalMilvusServer]:
    """The real Milvus server (C++ standalone from the `milvus` wheel)."""
    server = LocalMilvusServer(tmp_path_factory.mktemp("milvus-standalone"), cache_dir / "milvus")
    with server:
        yield server  # type: ignore[misc]


@pytest.fixture(params=["milvus-lite-server", "milvus-standalone"])
def any_milvus(request: pytest.FixtureRequest) -> Iterator[str]:
    """The URI of each Milvus the product runs on; a fresh collection name is the test's own."""
    name = "milvus_server" if request.param == "milvus-lite-server" else "milvus_standalone"
    yield request.getfixturevalue(name).url


@pytest.fixture
def collection() -> str:
    """A fresh collection name; the fixtures that create it drop it."""
    return f"test_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def settings(redis_url: str, milvus_server: LocalMilvusLite, collection: str) -> Settings:
    return Settings(redis_url=redis_url, milvus_uri=milvus_server.url, collection=collection)


@pytest.fixture
def ris_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """RIS_* variables for the CLIs and worker processes, pointing at the test services."""
    variables = {
        "RIS_REDIS_URL": settings.redis_url,
        "RIS_MILVUS_URI": settings.milvus_uri,
        "RIS_COLLECTION": settings.collection,
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return {**os.environ, **variables}


@pytest.fixture(scope="session")
def model_path(cache_dir: Path) -> Path:
    return ensure_onnx_model(DEFAULT_MODEL, cache_dir)


@pytest.fixture(scope="session")
def pipeline(model_path: Path) -> EmbeddingPipeline:
    return EmbeddingPipeline(Settings(), model_path=model_path)


@pytest.fixture(scope="session")
def photos(cache_dir: Path) -> list[Path]:
    return sample_photos(cache_dir)


@pytest.fixture(scope="session")
def imagenet(cache_dir: Path) -> list[Path]:
    return sorted(imagenet_photos(cache_dir).glob("imagenet_*.jpg"))


@pytest.fixture
def index(settings: Settings) -> Iterator[MilvusIndex]:
    vector_index = MilvusIndex(
        settings.milvus_uri, settings.collection, dim=get_model_spec(settings.model).dim
    )
    yield vector_index
    vector_index.drop()
    vector_index.close()


@pytest.fixture
def start_workers(
    ris_env: dict[str, str], tmp_path: Path, model_path: Path
) -> Iterator[Callable[[int], list[subprocess.Popen[bytes]]]]:
    """Start real worker processes for this test; all are stopped after it."""
    started: list[subprocess.Popen[bytes]] = []

    def start(count: int) -> list[subprocess.Popen[bytes]]:
        processes = launch_workers(ris_env, count, tmp_path, name=f"w{len(started)}")
        started.extend(processes)
        return processes

    yield start
    stop_workers(started)
