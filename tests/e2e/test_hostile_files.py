"""Hostile and unusual files through real workers: indexed correctly, or failed with a reason."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from producer.cli import main as producer
from ris.embedding.models import DEFAULT_MODEL, get_model_spec
from ris.index.milvus import MilvusIndex
from tests.imagefiles import png_declaring_size, two_halves, write_image

pytestmark = pytest.mark.e2e


def _photo(photos: list[Path], name: str) -> Image.Image:
    image = Image.open(next(p for p in photos if p.name == name))
    image.load()
    return image.convert("RGB")


def build_hostile_tree(root: Path, outside: Path, photos: list[Path]) -> dict[str, str | None]:
    """Writes the files; returns each path with the failure reason expected (None: indexed)."""
    cat = _photo(photos, "chelsea.png")
    expected: dict[str, str | None] = {}

    def add(name: str, reason: str | None) -> Path:
        expected[str(root / name)] = reason
        return root / name

    add("zero-bytes.jpg", "not an image (unrecognised format)").write_bytes(b"")
    whole = write_image(root / "whole.jpg", cat, quality=90)
    expected[str(whole)] = None
    add("truncated.jpg", "corrupt image").write_bytes(
        whole.read_bytes()[: whole.stat().st_size // 3]
    )
    add("random-bytes.jpg", "not an image (unrecognised format)").write_bytes(
        np.random.default_rng(3).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    )
    add("text.png", "not an image (unrecognised format)").write_text("a text file, not a PNG")
    add("bomb.png", "too many pixels: 30000x30000").write_bytes(png_declaring_size(30000, 30000))
    write_image(add("wide.png", None), two_halves(10000, 10, (255, 0, 0), (0, 0, 255)))
    write_image(add("cmyk.jpg", None), cat.convert("CMYK"))
    deep = (np.asarray(cat.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    write_image(add("deep16.png", None), Image.fromarray(deep))
    write_image(add("palette-transparent.png", None), cat.convert("P"), transparency=0)
    write_image(add("rgba.png", None), cat.convert("RGBA"))
    frames = [cat, cat.rotate(90)]
    frames[0].save(add("animated.gif", None), save_all=True, append_images=frames[1:])
    exif = Image.Exif()
    exif[0x0112] = 6
    write_image(add("exif-rotated.jpg", None), cat, exif=exif.tobytes())
    write_image(add("photo.webp", None), cat)
    unreadable = write_image(add("unreadable.jpg", "permission denied"), cat)
    unreadable.chmod(0)
    os.symlink(root / "nowhere.jpg", add("broken-link.jpg", "file not found"))
    os.symlink(root / "loop-b.jpg", add("loop-a.jpg", "symlink loop"))
    os.symlink(root / "loop-a.jpg", add("loop-b.jpg", "symlink loop"))
    non_utf8 = os.fsdecode(bytes(root / "caf") + b"\xe9.jpg")
    write_image(Path(non_utf8), cat)
    expected[non_utf8] = "file name is not valid UTF-8 (rename the file to index it)"
    write_image(add("album.jpg/inside.jpg", None), cat)
    write_image(add("name with spaces.jpg", None), cat)
    write_image(add("name\nwith newline.jpg", None), cat)
    os.symlink(outside, add("escape.jpg", "outside the allowed roots (RIS_ALLOWED_ROOTS)"))
    return expected


def test_each_hostile_file_is_indexed_or_failed_with_its_reason(
    ris_env, start_workers, photos: list[Path], tmp_path: Path
) -> None:
    root, elsewhere = tmp_path / "dataset", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    outside = Path(shutil.copy(photos[0], elsewhere / "secret.jpg"))
    expected = build_hostile_tree(root, outside, photos)
    ris_env["RIS_ALLOWED_ROOTS"] = str(root)
    workers = start_workers(2)

    # The outside photo is also named directly, as a hostile producer would.
    result = CliRunner().invoke(
        producer, ["enqueue", str(root), str(outside), "--wait", "--timeout", "300", "--json"]
    )
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    expected[str(outside)] = "outside the allowed roots (RIS_ALLOWED_ROOTS)"

    failures = status["failures"]
    shown = {
        path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"): reason
        for path, reason in expected.items()
    }
    for path, reason in shown.items():
        if reason is None:
            assert path not in failures, f"{path!r} failed: {failures.get(path)}"
        else:
            assert failures.get(path, "").startswith(reason), (path, failures.get(path))
    indexed = sum(reason is None for reason in expected.values())
    assert status["state"] == "done"
    assert (status["indexed"], status["failed"]) == (indexed, len(expected) - indexed)
    assert status["indexed"] + status["failed"] + status["skipped"] == status["seen"]
    assert all(worker.poll() is None for worker in workers), "a worker died"

    index = MilvusIndex(
        ris_env["RIS_MILVUS_URI"],
        ris_env["RIS_COLLECTION"],
        dim=get_model_spec(DEFAULT_MODEL).dim,
    )
    assert index.count() == indexed
    assert str(root / "name\nwith newline.jpg") in {p for _, p in index.iter_paths(str(root))}
