"""Dataset folders: written complete or not at all, in the layouts the evaluation reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ris.datasets import NAMES, copydetect, dataset_path, foolbox, layout, tuxpaint
from tests.imagefiles import stamp, textured


def test_building_replaces_the_folder_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "set"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), layout.building([target]) as (scratch,):
        (scratch / "new.txt").write_text("new")
        raise RuntimeError("interrupted")
    assert (target / "old.txt").exists() and not (tmp_path / "set.partial").exists()
    with layout.building([target]) as (scratch,):
        (scratch / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert not (tmp_path / "set.partial").exists()


def test_manifest_version_decides_whether_a_folder_is_current(tmp_path: Path) -> None:
    assert not layout.is_current(tmp_path, 1)
    layout.write_json(tmp_path / layout.MANIFEST, {"version": 1})
    assert layout.is_current(tmp_path, 1) and not layout.is_current(tmp_path, 2)


def test_class_folders_hold_byte_copies(tmp_path: Path) -> None:
    source = tmp_path / "src.png"
    textured().save(source)
    counts = layout.write_class_folders(
        tmp_path / "out", {"birds": {"a.png": source, "b.png": source}, "fish": {"c.png": source}}
    )
    assert counts == {"birds": 2, "fish": 1}
    assert (tmp_path / "out" / "birds" / "b.png").read_bytes() == source.read_bytes()


def test_copy_detection_layout_and_truth(tmp_path: Path) -> None:
    gallery = {"g1.jpg": textured(seed=1), "g2.jpg": textured(seed=2)}
    mild, hard = tmp_path / "mild", tmp_path / "hard"
    layout.write_gallery(mild, gallery)
    layout.link_gallery(mild, hard)
    queries = [
        layout.Query("q0001.jpg", "g2.jpg", textured(seed=3), 30, []),
        layout.Query("q0002.jpg", "g1.jpg", textured(seed=4), 95, []),
    ]
    truth = layout.write_queries(mild, queries)
    assert truth == json.loads((mild / layout.TRUTH).read_text())
    assert truth == {"q0001.jpg": "g2.jpg", "q0002.jpg": "g1.jpg"}
    assert sorted(p.name for p in (mild / "queries").iterdir()) == ["q0001.jpg", "q0002.jpg"]
    assert Image.open(mild / "queries" / "q0001.jpg").format == "JPEG"
    for name in gallery:
        assert (hard / "gallery" / name).read_bytes() == (mild / "gallery" / name).read_bytes()
    with pytest.raises(ValueError, match="not in the gallery"):
        layout.write_queries(hard, [layout.Query("q.jpg", "missing.jpg", textured(), 90, [])])


def picture(name: str, seed: int) -> copydetect.Picture:
    return copydetect.Picture(name, "test", "test", textured(seed=seed))


def test_near_copies_are_dropped_from_the_gallery() -> None:
    first = picture("a.jpg", 1)
    mirrored = textured(seed=2).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    second = copydetect.Picture("b.jpg", "test", "test", mirrored)
    copy = copydetect.Picture("c.jpg", "test", "test", first.image.resize((60, 45)))
    kept, dropped = copydetect.drop_near_duplicates([first, second, copy])
    assert [p.name for p in kept] == ["a.jpg", "b.jpg"] and dropped == {"c.jpg": "a.jpg"}


def test_queries_are_numbered_and_reproducible() -> None:
    originals = [picture("b.jpg", 2), picture("a.jpg", 1)]
    queries = copydetect.make_queries(originals, "hard")
    again = copydetect.make_queries(list(reversed(originals)), "hard")
    per_original = copydetect.QUERIES_PER_ORIGINAL
    assert [q.name for q in queries] == [f"q{i:04d}.jpg" for i in range(1, 2 * per_original + 1)]
    assert [q.original for q in queries] == ["a.jpg"] * per_original + ["b.jpg"] * per_original
    for query, twin in zip(queries, again, strict=True):
        assert query.steps == twin.steps
        assert np.array_equal(np.asarray(query.image), np.asarray(twin.image))
    mild = copydetect.make_queries(originals, "mild")
    assert [q.steps for q in mild] != [q.steps for q in queries]


@pytest.mark.parametrize(
    ("relative", "label", "name"),
    [
        ("animals/birds/crow.png", "animals-birds", "crow.png"),
        ("animals/mammals/bovines/bull.png", "animals-mammals", "bovines-bull.png"),
        ("household/cylinder.png", "household", "cylinder.png"),
    ],
)
def test_tux_paint_class_is_the_folder_cut_to_two_levels(relative, label, name) -> None:
    found = tuxpaint.Stamp(relative, Path(relative))
    assert (found.label, found.file_name) == (label, name)


def test_tux_paint_selection_keeps_photos_and_says_why_others_go(tmp_path: Path) -> None:
    drawing = np.zeros((60, 80, 3), np.uint8)
    drawing[:, :40] = (250, 200, 0)
    files = {
        "animals/birds/crow.png": stamp(np.asarray(textured(80, 60, seed=1))),
        "animals/birds/gull.png": stamp(np.asarray(textured(80, 60, seed=2))),
        "animals/birds/gull_mirror.png": stamp(np.asarray(textured(80, 60, seed=3))),
        "animals/birds/cartoon/owl.png": stamp(np.asarray(textured(80, 60, seed=4))),
        "animals/birds/duck.png": stamp(drawing),
        "people/crow.png": stamp(np.asarray(textured(80, 60, seed=1))),
    }
    for relative, image in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        image.save(tmp_path / relative)
    kept, dropped = tuxpaint.select(tmp_path)
    assert [s.relative for s in kept] == ["animals/birds/crow.png", "animals/birds/gull.png"]
    assert dropped["animals/birds/gull_mirror.png"].startswith("mirrored")
    assert dropped["animals/birds/cartoon/owl.png"] == "cartoon folder"
    assert dropped["animals/birds/duck.png"].startswith("drawing-like")
    assert dropped["people/crow.png"] == "same pixels as animals/birds/crow.png"
    members, small = tuxpaint.classes(kept)
    assert members == {} and small == ["animals/birds/crow.png", "animals/birds/gull.png"]


def test_foolbox_label_is_the_padded_class_index() -> None:
    assert foolbox.label(Path("imagenet_15_99.jpg")) == "099"


def test_dataset_path_uses_a_current_cache_and_never_fetches_when_told_not_to(
    tmp_path: Path,
) -> None:
    with pytest.raises(ValueError, match="unknown dataset"):
        dataset_path("nope", tmp_path)
    with pytest.raises(FileNotFoundError):
        dataset_path("foolbox", tmp_path, fetch=False)
    for name in NAMES:
        folder = tmp_path / "datasets" / name
        folder.mkdir(parents=True)
        version = foolbox.VERSION if name == "foolbox" else None
        version = tuxpaint.VERSION if name == "tuxpaint" else version
        version = copydetect.AUGLY_VERSION if name.startswith("augly") else version
        version = copydetect.VERSION if version is None else version
        layout.write_json(folder / layout.MANIFEST, {"version": version})
        assert dataset_path(name, tmp_path) == folder
