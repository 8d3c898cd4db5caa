"""docker-compose.yml: valid for Debian's docker-compose, and wired the way production needs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ris.settings import setting_env_names

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
IMAGES = "/data/images"
LONG_RUNNING = {"redis", "etcd", "minio", "milvus", "worker-cpu", "worker-gpu", "query", "flower"}
# One-shot: runs to completion before the product's services start.
ONE_SHOT = "milvus-access"
READ_IMAGES = ("producer", "worker-cpu", "worker-gpu", "query")
SECRETS = (
    "REDIS_PASSWORD",
    "MINIO_ROOT_PASSWORD",
    "FLOWER_BASIC_AUTH",
    "MILVUS_ROOT_PASSWORD",
    "RIS_MILVUS_TOKEN",
)
REQUIRED = (*SECRETS, "MINIO_ROOT_USER", "RIS_API_TOKENS")
# Baked into the image with the converted model, or the image's own (cpu or cuda).
NOT_PASSED = {"RIS_CACHE_DIR", "RIS_MODEL", "RIS_DEVICE"}


def _services() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def _env_example() -> dict[str, str]:
    lines = ENV_EXAMPLE.read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return {name: value for name, value in pairs}


def _docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        if os.environ.get("RIS_REQUIRE_DOCKER_COMPOSE"):
            pytest.fail("RIS_REQUIRE_DOCKER_COMPOSE is set but docker-compose is not installed")
        pytest.skip("no docker-compose here (apt-get install docker-compose); .ci/run installs it")
    return found


def _config(env_file: Path, *profiles: str) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` with only PATH from this environment, so .env.example decides."""
    flags = [flag for profile in profiles for flag in ("--profile", profile)]
    command = [_docker_compose(), "-f", str(COMPOSE), "--env-file", str(env_file), *flags]
    return subprocess.run(
        [*command, "config"],
        env={"PATH": os.environ["PATH"]},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("profiles", [(), ("gpu", "monitoring", "tools")], ids=["default", "all"])
def test_docker_compose_accepts_the_file_with_the_example_env(profiles: tuple[str, ...]) -> None:
    result = _config(ENV_EXAMPLE, *profiles)
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)["services"]
    example = _env_example()
    redis_url = f"redis://:{example['REDIS_PASSWORD']}@redis:6379/0"
    for name in READ_IMAGES:
        assert rendered[name]["environment"]["RIS_REDIS_URL"] == redis_url
        mount = rendered[name]["volumes"][0]  # the images (query has its features too)
        assert (mount["source"], mount["target"]) == (example["IMAGE_DIR"], IMAGES)


@pytest.mark.parametrize("missing", [*REQUIRED, "IMAGE_DIR"])
def test_a_missing_secret_or_image_folder_stops_compose_naming_it(
    missing: str, tmp_path: Path
) -> None:
    env_file = tmp_path / "partial.env"
    lines = ENV_EXAMPLE.read_text().splitlines()
    env_file.write_text("\n".join(line for line in lines if not line.startswith(f"{missing}=")))
    result = _config(env_file)
    assert result.returncode != 0
    assert f"set {missing}" in result.stderr


def test_services_and_profiles() -> None:
    profiles = {name: service.get("profiles", []) for name, service in _services().items()}
    assert profiles == {
        **{
            name: []
            for name in ("redis", "etcd", "minio", "milvus", ONE_SHOT, "worker-cpu", "query")
        },
        "worker-gpu": ["gpu"],
        "flower": ["monitoring"],
        "producer": ["tools"],
    }


def test_every_long_running_service_has_a_healthcheck() -> None:
    services = _services()
    assert {name for name, service in services.items() if "healthcheck" in service} == LONG_RUNNING
    assert all(services[name]["healthcheck"]["test"] for name in LONG_RUNNING)


def test_services_wait_for_their_dependencies_to_be_healthy() -> None:
    services = _services()
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            expected = (
                "service_completed_successfully" if dependency == ONE_SHOT else ("service_healthy")
            )
            assert condition == {"condition": expected}, name
    for name in READ_IMAGES:
        assert set(services[name]["depends_on"]) == {"redis", "milvus", ONE_SHOT}, name
    assert set(services[ONE_SHOT]["depends_on"]) == {"milvus"}
    assert set(services["milvus"]["depends_on"]) == {"etcd", "minio"}


def test_state_lives_on_named_volumes() -> None:
    document = yaml.safe_load(COMPOSE.read_text())
    mounts = {
        "redis": "redis-data:/data",
        "etcd": "etcd-data:/etcd",
        "minio": "minio-data:/minio_data",
        "milvus": "milvus-data:/var/lib/milvus",
    }
    for name, mount in mounts.items():
        assert document["services"][name]["volumes"] == [mount]
    # The query service keeps the local features of `query duplicates` between runs.
    features = "features:/home/ris/features"
    assert features in document["services"]["query"]["volumes"]
    assert document["services"]["query"]["environment"]["RIS_FEATURE_CACHE_DIR"].endswith(
        ":-/home/ris/features}"
    )
    assert set(document["volumes"]) == {
        mount.split(":")[0] for mount in [*mounts.values(), features]
    }
    assert "--appendonly" in document["services"]["redis"]["command"]


def test_images_are_read_only_at_the_same_path_for_producer_workers_and_query() -> None:
    for name in READ_IMAGES:
        service = _services()[name]
        mount = service["volumes"][0]  # the images (query has its features too)
        assert mount == {
            "type": "bind",
            "source": "${IMAGE_DIR:?set IMAGE_DIR in .env}",
            "target": IMAGES,
            "read_only": True,
        }, name
        assert service["environment"]["RIS_ALLOWED_ROOTS"] == IMAGES


def test_workers_scale_and_gpu_workers_get_a_gpu_and_their_own_queue() -> None:
    services = _services()
    for name in ("worker-cpu", "worker-gpu"):
        assert not {"container_name", "ports"} & set(services[name]), name
    gpu = services["worker-gpu"]
    assert gpu["build"]["target"] == "gpu" and services["worker-cpu"]["build"]["target"] == "cpu"
    [device] = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert (device["driver"], device["capabilities"]) == ("nvidia", ["gpu"])
    assert gpu["environment"]["RIS_DEVICE"] == "cuda"
    assert gpu["environment"]["RIS_QUEUE"] == "${GPU_QUEUE:-gpu}"


def test_query_is_published_and_producer_is_the_cli() -> None:
    services = _services()
    assert services["query"]["command"][:4] == ["query", "serve", "--host", "0.0.0.0"]
    assert services["query"]["ports"] == ["${QUERY_PORT:-8000}:8000"]
    assert services["producer"]["entrypoint"] == ["producer"]
    assert services["flower"]["ports"] == ["127.0.0.1:${FLOWER_PORT:-5555}:5555"]


def test_third_party_images_are_pinned() -> None:
    for name, service in _services().items():
        if "build" not in service:
            tag = service["image"].rsplit(":", 1)[-1]
            assert re.search(r"\d", tag) and tag != "latest", (name, service["image"])


def _environment_items() -> list[tuple[str, str]]:
    return [
        (key, str(value))
        for service in _services().values()
        for key, value in service.get("environment", {}).items()
    ]


def test_no_secret_is_written_in_the_file() -> None:
    text = COMPOSE.read_text()
    example = _env_example()
    for name in SECRETS:
        assert example[name] not in text
    for name in REQUIRED:
        assert f"${{{name}:?" in text
    for key, value in _environment_items():
        if re.search("PASSWORD|SECRET|_AUTH$|BASIC_AUTH|TOKEN|ACCESS_KEY", key):
            assert re.fullmatch(r"\$\{[A-Z_]+:[?-][^}]*\}", value), (key, value)
    assert "${REDIS_PASSWORD:?" in _services()["redis"]["command"][-1]
    assert _services()["query"]["environment"]["RIS_REDIS_URL"].startswith(
        "redis://:${REDIS_PASSWORD:?"
    )


def test_every_setting_reaches_the_containers_and_is_in_the_env_example() -> None:
    passed = {key for key in _services()["worker-cpu"]["environment"] if key.startswith("RIS_")}
    assert passed == set(setting_env_names()) - NOT_PASSED
    fixed = {"RIS_REDIS_URL", "RIS_MILVUS_URI", "RIS_ALLOWED_ROOTS"}
    assert passed - fixed <= set(_env_example())


def test_milvus_runs_with_authorization_and_the_product_signs_in_as_its_own_user() -> None:
    services = _services()
    assert services["milvus"]["environment"]["COMMON_SECURITY_AUTHORIZATIONENABLED"] == "true"
    assert services[ONE_SHOT]["command"] == ["python", "-m", "ris_cli.milvus_access"]
    assert services[ONE_SHOT]["restart"] == "no"
    for name in (*READ_IMAGES, "worker-gpu"):
        token = services[name]["environment"]["RIS_MILVUS_TOKEN"]
        assert token.startswith("${RIS_MILVUS_TOKEN:?"), name
    assert services["query"]["environment"]["RIS_API_TOKENS"].startswith("${RIS_API_TOKENS:?")


def test_the_image_build_copies_every_package_of_the_project() -> None:
    """A package missing from the Dockerfile or .dockerignore would be missing from the image."""
    packages = sorted(
        path.name
        for path in REPO.iterdir()
        if (path / "__init__.py").exists() and path.name not in {"tests", "bench"}
    )
    dockerfile = (REPO / "Dockerfile").read_text()
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    for package in packages:
        assert f"COPY {package} {package}" in dockerfile, package
        assert f"!{package}/" in ignore, package
    assert {"ris", "ris_api", "ris_cli", "producer", "workers", "query"} <= set(packages)
