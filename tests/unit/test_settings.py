"""Settings: defaults, RIS_* environment variables, validation, documentation."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from ris.embedding.models import DEFAULT_MODEL
from ris.settings import Settings, setting_env_names

REPO = Path(__file__).resolve().parents[2]


def test_defaults_point_at_local_services(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in setting_env_names():
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.milvus_uri == "http://127.0.0.1:19530"
    assert settings.model == DEFAULT_MODEL == "lite0-mobilenet-v2-gem-deframe"
    assert settings.batch_size == 64
    assert settings.collection == "images_lite0_mobilenet_v2_gem_deframe"


def test_each_model_has_its_own_collection_unless_one_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RIS_COLLECTION", raising=False)
    monkeypatch.setenv("RIS_MODEL", "mobilenet-v2")
    assert Settings().collection == "images_mobilenet_v2"
    assert Settings(model="efficientnet-lite2").collection == "images_efficientnet_lite2"
    monkeypatch.setenv("RIS_COLLECTION", "photos")
    assert Settings().collection == "photos"


def test_environment_variables_override_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIS_BATCH_SIZE", "16")
    monkeypatch.setenv("RIS_MILVUS_URI", "/tmp/x.db")
    monkeypatch.setenv("RIS_COLLECTION", "photos")
    settings = Settings()
    assert (settings.batch_size, settings.milvus_uri, settings.collection) == (
        16,
        "/tmp/x.db",
        "photos",
    )


def test_an_empty_variable_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIS_BATCH_SIZE", "")
    monkeypatch.setenv("RIS_QUEUE", "")
    settings = Settings()
    assert (settings.batch_size, settings.queue) == (64, "ris")


def test_environment_is_read_when_built_not_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIS_DEVICE", "cuda")
    assert Settings().device == "cuda"
    monkeypatch.setenv("RIS_DEVICE", "cpu")
    assert Settings().device == "cpu"


def test_invalid_value_is_refused_with_the_setting_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIS_BATCH_SIZE", "0")
    with pytest.raises(ValidationError, match="batch_size"):
        Settings()


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.batch_size = 3  # type: ignore[misc]


def test_inference_threads_zero_means_one_per_core() -> None:
    assert Settings(inference_threads=0).resolved_inference_threads >= 1
    assert Settings(inference_threads=3).resolved_inference_threads == 3


def test_readme_documents_every_setting() -> None:
    readme = (REPO / "README.md").read_text()
    missing = [name for name in setting_env_names() if f"`{name}`" not in readme]
    assert not missing, f"settings missing from the README table: {missing}"
