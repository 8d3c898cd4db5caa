"""`query eval` end to end on tiny datasets made here: real workers, real Milvus, real model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pymilvus import MilvusClient

from query.cli import main as query
from tests.imagefiles import edited_copies

pytestmark = pytest.mark.e2e


def run_eval(folder: Path, env: dict[str, str], *options: str) -> dict[str, Any]:
    result = CliRunner().invoke(query, ["eval", str(folder), "--json", *options], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_class_retrieval_leave_one_out(
    photos: list[Path], ris_env: dict[str, str], model_path: Path, tmp_path: Path
) -> None:
    # Four classes, each a photo and three edited copies of it; one unreadable file.
    for photo in photos[:4]:
        folder = tmp_path / "set" / photo.stem
        folder.mkdir(parents=True)
        shutil.copy(photo, folder)
        edited_copies(photo, folder)
    (tmp_path / "set" / photos[0].stem / "corrupt.jpg").write_bytes(b"\xff\xd8 not a jpeg")

    report = run_eval(tmp_path / "set", ris_env, "--top-k", "5")

    assert report["layout"] == "class folders, leave-one-out"
    assert (report["gallery"], report["indexed"], report["failed"]) == (17, 16, 1)
    assert (report["queries"], report["failed_queries"]) == (17, 1)
    metrics = report["metrics"]
    assert set(metrics) == {"map@5", "tutorial_map@5", "recall@5", "precision@1"}
    # 16 of 17 queries can find their three siblings; the unreadable one scores zero.
    assert metrics["precision@1"] == pytest.approx(16 / 17)
    assert metrics["map@5"] >= 0.85
    # Every readable query finds all its indexed siblings; the first class's queries count the
    # unreadable file among their four right answers, so they find three of four.
    assert metrics["recall@5"] == pytest.approx((4 * 3 / 4 + 12) / 17)
    assert report["ingest_images_per_s"] > 0 and report["queries_per_s"] > 0
    # The temporary collection is gone.
    client = MilvusClient(uri=ris_env["RIS_MILVUS_URI"])
    assert not [name for name in client.list_collections() if name.startswith("eval_")]


def test_copy_detection_on_embedded_services(
    photos: list[Path], model_path: Path, tmp_path: Path
) -> None:
    root = tmp_path / "copies"
    (root / "gallery").mkdir(parents=True)
    truth = {}
    for photo in photos[:10]:
        shutil.copy(photo, root / "gallery")
    for photo in photos[:3]:
        for copy in edited_copies(photo, root / "queries").values():
            truth[copy.name] = photo.name
    (root / "truth.json").write_text(json.dumps(truth))

    env = {"RIS_REDIS_URL": "redis://127.0.0.1:1/0"}
    report = run_eval(root, env, "--embedded", "--keep-features")

    assert report["layout"] == "copy detection"
    assert (report["gallery"], report["indexed"], report["queries"]) == (10, 10, 9)
    assert report["metrics"] == {"recall@1": 1.0, "recall@10": 1.0, "mrr": 1.0}
    assert report["kept_features"] and report["keep_images_per_s"] > 0
    verification = (
        "verify_top",
        "verify_kept_top",
        "verify_centre",
        "verify_pasted",
        "verify_weak",
        "verify_frames",
        "verify_region",
        "pasted_nearest",
    )
    expected = (10, 100, False, True, True, True, True, True)
    assert tuple(report[name] for name in verification) == expected


def test_a_folder_in_no_known_layout_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "loose.jpg").write_bytes(b"")
    for folder in (tmp_path / "missing", tmp_path):
        result = CliRunner().invoke(query, ["eval", str(folder)])
        assert result.exit_code == 1
        assert result.output.startswith("Error: ") and result.output.count("\n") == 1
