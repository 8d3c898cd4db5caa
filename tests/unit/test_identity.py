"""Image ids: deterministic, positive 63-bit, keyed by the normalised absolute path."""

import os

from ris.files.identity import has_image_extension, image_id, normalise_path


def test_same_path_same_id_across_spellings(tmp_path) -> None:
    target = tmp_path / "a" / "cat.jpg"
    spelled_oddly = f"{tmp_path}/a/../a/./cat.jpg"
    assert image_id(target) == image_id(spelled_oddly)


def test_relative_path_is_made_absolute(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert normalise_path("cat.jpg") == os.path.join(str(tmp_path), "cat.jpg")
    assert image_id("cat.jpg") == image_id(tmp_path / "cat.jpg")


def test_ids_are_distinct_positive_int64() -> None:
    ids = {image_id(f"/data/{n}.jpg") for n in range(10_000)}
    assert len(ids) == 10_000
    assert all(0 <= value < 2**63 for value in ids)


def test_id_is_pinned_for_a_known_path() -> None:
    # A fixed value: ids must not change between releases or hosts.
    assert image_id("/data/photos/cat.jpg") == 8194884226248225497


def test_undecodable_file_names_get_ids() -> None:
    name = os.fsdecode(b"/data/\xff\xfe.jpg")
    assert 0 <= image_id(name) < 2**63


def test_extension_filter_is_case_insensitive() -> None:
    assert has_image_extension("A.JPG")
    assert has_image_extension("b.webp")
    assert not has_image_extension("notes.txt")
    assert not has_image_extension("jpg")
