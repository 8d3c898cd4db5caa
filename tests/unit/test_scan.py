"""Scanning: streams image paths in a stable order, skips non-images, never loops."""

import inspect
import os

from ris.files.scan import batched, iter_image_paths


def _touch(path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


def test_finds_images_recursively_in_name_order(tmp_path) -> None:
    for name in ("b/2.jpg", "b/1.PNG", "a/z.webp", "a/deep/er/x.jpeg", "top.gif"):
        _touch(tmp_path / name)
    found = [os.path.relpath(path, tmp_path) for path in iter_image_paths(str(tmp_path))]
    assert found == ["top.gif", "a/z.webp", "a/deep/er/x.jpeg", "b/1.PNG", "b/2.jpg"]


def test_skips_files_without_image_extension(tmp_path) -> None:
    _touch(tmp_path / "notes.txt")
    _touch(tmp_path / "README")
    _touch(tmp_path / "cat.jpg")
    assert [os.path.basename(p) for p in iter_image_paths(str(tmp_path))] == ["cat.jpg"]


def test_directory_named_like_an_image_is_descended_not_yielded(tmp_path) -> None:
    _touch(tmp_path / "album.jpg" / "inner.png")
    assert [os.path.relpath(p, tmp_path) for p in iter_image_paths(str(tmp_path))] == [
        "album.jpg/inner.png"
    ]


def test_symlinked_directories_are_not_followed(tmp_path) -> None:
    _touch(tmp_path / "real" / "cat.jpg")
    os.symlink(tmp_path, tmp_path / "real" / "loop")
    assert [os.path.relpath(p, tmp_path) for p in iter_image_paths(str(tmp_path))] == [
        "real/cat.jpg"
    ]


def test_a_single_file_root_is_yielded(tmp_path) -> None:
    _touch(tmp_path / "cat.jpg")
    assert list(iter_image_paths(str(tmp_path / "cat.jpg"))) == [str(tmp_path / "cat.jpg")]


def test_paths_are_absolute_from_a_relative_root(tmp_path, monkeypatch) -> None:
    _touch(tmp_path / "d" / "cat.jpg")
    monkeypatch.chdir(tmp_path)
    assert list(iter_image_paths("d")) == [str(tmp_path / "d" / "cat.jpg")]


def test_scan_is_a_generator_that_streams(tmp_path) -> None:
    for number in range(5):
        _touch(tmp_path / f"{number}.jpg")
    scan = iter_image_paths(str(tmp_path))
    assert inspect.isgenerator(scan)
    assert next(scan).endswith("0.jpg")


def test_batched_splits_without_losing_items() -> None:
    assert list(batched(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(batched([], 3)) == []
