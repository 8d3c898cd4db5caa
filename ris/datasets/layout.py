"""Writing a dataset's folder: built aside, then renamed into place with its manifest last.

A dataset folder exists only complete: it is written under `<name>.partial/` and renamed when
everything, manifest included, is there. Its manifest's `version` says which recipe made it,
so a changed recipe rebuilds it and an unchanged one is left alone.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

MANIFEST = "manifest.json"
TRUTH = "truth.json"


def write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def read_manifest(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_current(folder: Path, version: int) -> bool:
    manifest = read_manifest(folder)
    return manifest is not None and manifest.get("version") == version


@contextmanager
def building(folders: list[Path]) -> Iterator[list[Path]]:
    """Scratch folders to fill; on success each replaces its final folder, else none does."""
    partial = [folder.with_name(folder.name + ".partial") for folder in folders]
    for scratch in partial:
        if scratch.exists():
            shutil.rmtree(scratch)
        scratch.mkdir(parents=True)
    try:
        yield partial
    except BaseException:
        for scratch in partial:
            shutil.rmtree(scratch, ignore_errors=True)
        raise
    for scratch, folder in zip(partial, folders, strict=True):
        if folder.exists():
            shutil.rmtree(folder)
        scratch.rename(folder)


def save_jpeg(image: Image.Image, path: Path, quality: int) -> None:
    # Fixed encoder options, so the same pixels always give the same bytes.
    image.convert("RGB").save(path, "JPEG", quality=quality, optimize=True, subsampling=2)


def write_class_folders(root: Path, members: dict[str, dict[str, Path]]) -> dict[str, int]:
    """`root/<class>/<name>` copied byte for byte from each source; returns images per class."""
    counts = {}
    for label in sorted(members):
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        for name, source in sorted(members[label].items()):
            shutil.copyfile(source, folder / name)
        counts[label] = len(members[label])
    return counts


@dataclass(frozen=True)
class Query:
    name: str  # file name under queries/
    original: str  # file name under gallery/
    image: Image.Image
    quality: int
    steps: list


def write_gallery(root: Path, gallery: dict[str, Image.Image], quality: int = 95) -> None:
    folder = root / "gallery"
    folder.mkdir(parents=True, exist_ok=True)
    for name in sorted(gallery):
        save_jpeg(gallery[name], folder / name, quality)


def link_gallery(source_root: Path, root: Path) -> None:
    """The same gallery in a second dataset: hard links where possible, else copies."""
    (root / "gallery").mkdir(parents=True, exist_ok=True)
    for path in sorted((source_root / "gallery").iterdir()):
        target = root / "gallery" / path.name
        try:
            os.link(path, target)
        except OSError:
            shutil.copyfile(path, target)


def write_queries(root: Path, queries: list[Query]) -> dict[str, str]:
    """`queries/<name>` and `truth.json` (query file name -> gallery file name)."""
    folder = root / "queries"
    folder.mkdir(parents=True, exist_ok=True)
    gallery = {path.name for path in (root / "gallery").iterdir()}
    truth = {}
    for query in queries:
        if query.original not in gallery:
            raise ValueError(f"query {query.name}: original {query.original} is not in the gallery")
        if query.name in truth:
            raise ValueError(f"two queries named {query.name}")
        save_jpeg(query.image, folder / query.name, query.quality)
        truth[query.name] = query.original
    write_json(root / TRUTH, truth)
    return truth
