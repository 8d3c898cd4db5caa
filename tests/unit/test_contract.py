"""The task payload contract: what the workers accept and what they refuse."""

import pytest

from ris.errors import InvalidPayloadError
from ris.jobs.contract import MAX_PATHS_PER_TASK, BatchPayload, celery_config
from ris.settings import Settings


def test_round_trip() -> None:
    payload = BatchPayload(job="abcdef123456", batch=3, paths=["/a.jpg", "/b.png"])
    assert BatchPayload.from_message(payload.to_message()) == payload
    named = BatchPayload("abcdef123456", 3, ["/a.jpg"], collection="photos_2026", model="m")
    assert BatchPayload.from_message(named.to_message()) == named


def test_a_message_without_collection_and_model_means_the_workers_own() -> None:
    """Messages queued by a producer from before jobs named their collection still run."""
    old = BatchPayload.from_message({"job": "abcdef", "batch": 1, "paths": ["/a.jpg"]})
    assert (old.collection, old.model) == ("", "")


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("not a dict", "must be an object"),
        ({"job": "abcdef", "batch": 1, "paths": [], "extra": 1}, "unknown payload keys"),
        ({"job": "../etc", "batch": 1, "paths": []}, "invalid job id"),
        ({"job": "abcdef", "batch": 0, "paths": []}, "invalid batch number"),
        ({"job": "abcdef", "batch": True, "paths": []}, "invalid batch number"),
        ({"job": "abcdef", "batch": 1, "paths": "/a.jpg"}, "list of non-empty strings"),
        ({"job": "abcdef", "batch": 1, "paths": [1, 2]}, "list of non-empty strings"),
        (
            {"job": "abcdef", "batch": 1, "paths": ["/a.jpg"] * (MAX_PATHS_PER_TASK + 1)},
            "too many paths",
        ),
        ({"job": "abcdef", "batch": 1, "paths": [], "collection": "a-b"}, "invalid collection"),
        ({"job": "abcdef", "batch": 1, "paths": [], "collection": 3}, "invalid collection"),
        ({"job": "abcdef", "batch": 1, "paths": [], "model": ["x"]}, "invalid model"),
    ],
)
def test_malformed_payloads_are_refused_with_a_reason(message: object, reason: str) -> None:
    with pytest.raises(InvalidPayloadError, match=reason):
        BatchPayload.from_message(message)


def test_celery_speaks_json_only_with_late_acks_and_prefetch_one() -> None:
    config = celery_config(Settings(redis_url="redis://h:1/2", visibility_timeout=120))
    assert config["accept_content"] == ["json"]
    assert config["task_serializer"] == "json"
    assert config["task_acks_late"] is True
    assert config["worker_prefetch_multiplier"] == 1
    assert config["broker_url"] == "redis://h:1/2"
    assert config["broker_transport_options"]["visibility_timeout"] == 120
    assert config["broker_transport_options"]["unacked_restore_throttle"] == 1
