"""`query eval` reads the three dataset layouts and refuses malformed ones clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ris.evaluation.eval_sets import EvalSetError, read_eval_set


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def test_class_folders_are_evaluated_leave_one_out(tmp_path: Path) -> None:
    touch(tmp_path, "cat/1.jpg", "cat/2.jpg", "cat/3.png", "dog/1.jpg", "dog/2.jpg", "owl/1.jpg")
    eval_set = read_eval_set(tmp_path)
    assert eval_set.kind == "class" and eval_set.leave_one_out
    assert len(eval_set.gallery) == 6
    # The owl has no other owl to find: it is left out and counted.
    assert len(eval_set.queries) == 5 and eval_set.unanswerable == 1
    first = eval_set.queries[0]
    assert first.path == str(tmp_path / "cat/1.jpg")
    assert first.relevant == {str(tmp_path / "cat/2.jpg"), str(tmp_path / "cat/3.png")}


def test_gallery_and_queries_by_class(tmp_path: Path) -> None:
    touch(tmp_path, "gallery/cat/1.jpg", "gallery/cat/2.jpg", "gallery/dog/1.jpg")
    touch(tmp_path, "queries/cat/q.jpg", "queries/dog/q.jpg", "queries/fox/q.jpg")
    eval_set = read_eval_set(tmp_path)
    assert not eval_set.leave_one_out and len(eval_set.gallery) == 3
    assert [q.relevant for q in eval_set.queries] == [
        {str(tmp_path / "gallery/cat/1.jpg"), str(tmp_path / "gallery/cat/2.jpg")},
        {str(tmp_path / "gallery/dog/1.jpg")},
    ]
    assert eval_set.unanswerable == 1


def test_copy_detection_with_truth(tmp_path: Path) -> None:
    touch(tmp_path, "gallery/a.jpg", "gallery/b.jpg", "queries/a-crop.jpg")
    (tmp_path / "truth.json").write_text(json.dumps({"a-crop.jpg": "a.jpg"}))
    eval_set = read_eval_set(tmp_path)
    assert eval_set.kind == "copy" and len(eval_set.gallery) == 2
    (query,) = eval_set.queries
    assert query.path == str(tmp_path / "queries/a-crop.jpg")
    assert query.relevant == {str(tmp_path / "gallery/a.jpg")}


@pytest.mark.parametrize(
    ("files", "truth", "message"),
    [
        (["loose.jpg"], None, "must sit in class folders"),
        (["gallery/cat/1.jpg"], None, "needs both gallery/ and queries/"),
        (["notes/readme.txt"], None, "no images found"),
        (["a/1.jpg", "b/1.jpg"], None, "no query has a right answer"),
        (["gallery/a.jpg"], {"q.jpg": "a.jpg"}, "q.jpg: listed in truth.json but missing"),
        (["gallery/a.jpg", "queries/q.jpg"], {"q.jpg": "z.jpg"}, "is not in the gallery"),
        (["gallery/a.jpg"], ["not", "a", "mapping"], "must map query file names"),
    ],
)
def test_malformed_layouts_are_refused(
    tmp_path: Path, files: list[str], truth: object, message: str
) -> None:
    touch(tmp_path, *files)
    if truth is not None:
        (tmp_path / "truth.json").write_text(json.dumps(truth))
    with pytest.raises(EvalSetError, match=message):
        read_eval_set(tmp_path)
