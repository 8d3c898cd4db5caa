"""The capacity plan: its formulas, its inputs, and docs/SCALING.md holding its current tables."""

import json
from pathlib import Path

import pytest

from bench.capacity import (
    Assumptions,
    Measured,
    bytes_per_vector,
    milvus_for,
    redis_bytes_per_message,
    render,
)

REPO = Path(__file__).resolve().parents[2]


def test_bytes_per_vector_follow_the_stated_formulas() -> None:
    per = bytes_per_vector(Assumptions(dim=1280))
    assert per["raw"] == 1280 * 4
    assert per["hnsw"] == 1280 * 4 + 16 * 2 * 4 + 12
    assert per["ivf_pq"] == 64 + 8
    assert per["diskann_ram"] == 1280 * 4 * (0.125 + 0.10)
    assert Assumptions().dim == 2560  # the default model's


def test_deployment_moves_from_standalone_to_cluster() -> None:
    assert milvus_for(5 * 2**30, Assumptions()) == "standalone, 8 GiB host"
    assert milvus_for(448 * 2**30, Assumptions()) == "cluster, 10 query nodes x 64 GiB"


def test_redis_message_at_the_measured_path_length_is_the_measured_size() -> None:
    measured = Measured()
    path = measured.redis_message_path_chars / measured.redis_message_paths
    same = Assumptions(path_bytes=int(path), batch_size=measured.redis_message_paths)
    assert abs(redis_bytes_per_message(measured, same) - measured.redis_queue_bytes_per_message) < 1


def test_bench_json_overrides_the_measured_defaults(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    figures.write_text(
        json.dumps(
            {"e2e_ips": 200.0, "ceiling_cpu_ms_per_task": {"milvus": 9, "redis": 1, "workers": 5}}
        )
    )
    measured = Measured.from_bench_json(figures)
    assert measured.cpu_ips_per_core == pytest.approx(200.0 / 2)
    assert (measured.milvus_cpu_ms_per_task, measured.worker_cpu_ms_per_task) == (9, 5)


def test_scaling_doc_holds_the_current_tables() -> None:
    document = (REPO / "docs" / "SCALING.md").read_text()
    assert render(Measured(), Assumptions()) in document, "run python -m bench.capacity --write"


def test_bench_scale_json_sets_the_million_row_figures(tmp_path: Path) -> None:
    figures = tmp_path / "scale.json"
    run = {"rows": 2_000_000, "ready_s": 1000.0, "bytes_per_image": 900, "dim": 128}
    run["loading"] = {"milvus_cpu_ms_per_row_ready": 0.5}
    figures.write_text(json.dumps({"scale_ivf_sq8": run}))
    measured = Measured.from_bench_json(figures)
    assert (measured.million_bytes_per_image, measured.million_dim) == (900, 128)
    assert measured.million_milvus_cpu_ms_per_row == 0.5
    assert measured.million_ready_rows_per_s == pytest.approx(2000.0)
