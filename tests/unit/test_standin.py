"""The benchmark stand-in pipeline: a fixed hold per batch, deterministic unit vectors."""

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.standin import HoldPipeline
from bench.standin_worker import HOLD_VARIABLE
from ris.embedding.models import DEFAULT_MODEL, get_model_spec
from ris.embedding.pipeline import EmbeddingPipeline
from ris.index.base import ImageRecord
from workers import runtime
from workers.ingest import process_batch


class RecordingIndex:
    def __init__(self) -> None:
        self.records: list[ImageRecord] = []

    def upsert(self, records: list[ImageRecord]) -> int:
        self.records.extend(records)
        return len(records)


def test_holds_once_per_batch_and_makes_deterministic_unit_vectors() -> None:
    hold = HoldPipeline(0.2, dim=1280)
    paths = [f"/images/{number}.jpg" for number in range(64)]
    started = time.perf_counter()
    embedded = hold(paths)
    assert 0.2 <= time.perf_counter() - started < 0.6
    assert embedded.paths == paths and not embedded.failures
    assert embedded.vectors.shape == (64, 1280) and embedded.vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(embedded.vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(HoldPipeline(0, dim=1280)(paths[:2]).vectors, embedded.vectors[:2])
    assert abs(float(embedded.vectors[0] @ embedded.vectors[1])) < 0.2


def test_an_empty_batch_does_not_hold() -> None:
    started = time.perf_counter()
    assert HoldPipeline(5.0, dim=8)([]).vectors.shape == (0, 8)
    assert time.perf_counter() - started < 1.0


def test_the_standin_worker_app_builds_it_in_place_of_the_model_and_warns(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    monkeypatch.setenv(HOLD_VARIABLE, "0.01")
    import bench.standin_worker  # noqa: F401 - replaces the workers' pipeline factory

    try:
        with caplog.at_level(logging.WARNING, logger="bench.standin_worker"):
            pipeline = runtime.pipeline()
    finally:
        runtime.use_pipeline(EmbeddingPipeline)
    assert isinstance(pipeline, HoldPipeline) and pipeline.dim == get_model_spec(DEFAULT_MODEL).dim
    assert "BENCHMARK MODE" in caplog.text

    present = tmp_path / "a.jpg"
    present.write_bytes(b"")  # never opened: only stat'ed for its size and mtime
    index: Any = RecordingIndex()
    result = process_batch([str(present), str(tmp_path / "gone.jpg")], pipeline, index)
    assert result.indexed == [str(present)]
    assert result.failures == {str(tmp_path / "gone.jpg"): "file not found"}
    assert [record.path for record in index.records] == [str(present)]
