"""Foolbox's 20 labelled ImageNet photos as class folders: `foolbox/<class index>/<photo>.jpg`."""

from __future__ import annotations

from pathlib import Path

from ris.datasets.layout import building, write_class_folders, write_json
from ris.datasets.samples import WHEELS, imagenet_label, imagenet_photos

VERSION = 1


def label(path: Path) -> str:
    """The ImageNet class index in the file name, zero-padded so folders sort by class."""
    return f"{imagenet_label(path):03d}"


def build(cache_dir: Path, folder: Path) -> None:
    members: dict[str, dict[str, Path]] = {}
    for path in sorted(imagenet_photos(cache_dir).glob("imagenet_*.jpg")):
        members.setdefault(label(path), {})[path.name] = path
    with building([folder]) as (scratch,):
        counts = write_class_folders(scratch, members)
        write_json(
            scratch / "manifest.json",
            {
                "name": "foolbox",
                "version": VERSION,
                "task": "class retrieval, leave-one-out: class = ImageNet class index",
                "source": {"wheel": WHEELS["foolbox"][0], "files": "foolbox/data/imagenet_*.jpg"},
                "classes": len(counts),
                "images": sum(counts.values()),
                "classes_with_2_or_more": sum(1 for count in counts.values() if count >= 2),
                "images_per_class": counts,
                "seed": None,
            },
        )
