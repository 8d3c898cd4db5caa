"""Class retrieval on Tux Paint's photographed stamps: `tuxpaint/<class>/<stamp>.png`.

Debian's `tuxpaint-stamps-default` holds about 800 PNG stamps (and SVGs) in labelled folders
under /usr/share/tuxpaint/stamps/. Photos on transparent backgrounds are kept; drawings are not:
- SVGs (vector drawings) are never fetched, and `*_mirror.png` (a stamp's flipped twin) and
  any folder named `cartoon` (Tux Paint's own label for drawn stamps) are left out;
- a PNG must look like a photo (`photos.looks_like_photo`: at least 2,000 opaque pixels,
  1,000 distinct colours, and under 35% of neighbouring pixels of equal grey; drawings are
  flat areas of few colours);
- REVIEWED_DRAWINGS lists the few drawn or rendered stamps that pass that test, found by
  looking at every stamp that passes it;
- an exact duplicate of an earlier stamp (same pixels, in path order) is dropped.
A class is the stamp's folder cut to two levels (`animals/birds`, `food/fruit`; a stamp right
under a top folder is in that folder's class), written `animals-birds`; classes with fewer than
MIN_CLASS_SIZE photos are dropped (their photos still serve the copy-detection sets).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ris.datasets import photos, sources
from ris.datasets.layout import building, write_class_folders, write_json

PACKAGE = "tuxpaint-stamps-default"
STAMPS = "usr/share/tuxpaint/stamps/"
VERSION = 1
MIN_CLASS_SIZE = 5
CLASS_DEPTH = 2

REVIEWED_DRAWINGS = frozenset(
    {
        "animals/fish/clownfish.png",
        "animals/mammals/aquatic/whale.png",
        "clothes/button.png",
        "household/rubberduck.png",
        "naturalforces/fire.png",
        "seasonal/easter/bluebird.png",
        "seasonal/easter/bunny-egg.png",
        "seasonal/easter/bunny.png",
        "seasonal/easter/butterfly.png",
        "seasonal/easter/wrapped_chocolate_easter_egg.png",
        "seasonal/easter/wrapped_chocolate_easter_egg_2.png",
        "seasonal/newyears/fireworks2.png",
        "space/planets/0_sun.png",
        "town/roadsigns/toilets.png",
        "town/watch_tower.png",
    }
)


@dataclass(frozen=True)
class Stamp:
    relative: str  # path under the stamps folder, e.g. "animals/birds/crow.png"
    path: Path

    @property
    def label(self) -> str:
        folders = self.relative.split("/")[:-1]
        return "-".join(folders[:CLASS_DEPTH])

    @property
    def file_name(self) -> str:
        """Its name in its class folder: deeper folders become a prefix, so names stay unique."""
        parts = self.relative.split("/")
        return "-".join(parts[min(len(parts) - 1, CLASS_DEPTH) :])


def fetch(cache_dir: Path) -> tuple[Path, str]:
    """The stamps folder (PNGs only) and the package version."""
    root, version = sources.debian_files(
        cache_dir, PACKAGE, lambda name: name.startswith(STAMPS) and name.endswith(".png")
    )
    return root / STAMPS, version


def drop_reason(relative: str, image: Image.Image) -> str | None:
    """Why a PNG stamp is not a photo to keep, or None to keep it."""
    folders = relative.split("/")[:-1]
    if relative.endswith("_mirror.png"):
        return "mirrored twin of another stamp"
    if "cartoon" in folders:
        return "cartoon folder"
    if relative in REVIEWED_DRAWINGS:
        return "drawing (reviewed)"
    measures = photos.measure_stamp(image)
    if not photos.looks_like_photo(measures):
        return (
            f"drawing-like (opaque {measures.opaque}, colours {measures.colours}, "
            f"flat {measures.flat:.2f})"
        )
    return None


def select(stamps_dir: Path) -> tuple[list[Stamp], dict[str, str]]:
    """The photographed stamps in path order, and every other PNG with its reason."""
    kept: list[Stamp] = []
    dropped: dict[str, str] = {}
    seen: dict[str, str] = {}
    for path in sorted(stamps_dir.rglob("*.png")):
        relative = path.relative_to(stamps_dir).as_posix()
        with Image.open(path) as image:
            image.load()
            reason = drop_reason(relative, image)
            digest = hashlib.sha256(image.convert("RGBA").tobytes()).hexdigest()
        if reason is None and digest in seen:
            reason = f"same pixels as {seen[digest]}"
        if reason is not None:
            dropped[relative] = reason
            continue
        seen[digest] = relative
        kept.append(Stamp(relative, path))
    return kept, dropped


def classes(stamps: list[Stamp]) -> tuple[dict[str, dict[str, Path]], list[str]]:
    """Class -> {file name: source} for classes of MIN_CLASS_SIZE or more; the other stamps."""
    by_label: dict[str, dict[str, Path]] = {}
    for stamp in stamps:
        by_label.setdefault(stamp.label, {})[stamp.file_name] = stamp.path
    large = {
        label: members for label, members in by_label.items() if len(members) >= MIN_CLASS_SIZE
    }
    small = sorted(s.relative for s in stamps if s.label not in large)
    return large, small


def build(cache_dir: Path, folder: Path) -> None:
    stamps_dir, package_version = fetch(cache_dir)
    kept, dropped = select(stamps_dir)
    members, small = classes(kept)
    with building([folder]) as (scratch,):
        counts = write_class_folders(scratch, members)
        write_json(
            scratch / "manifest.json",
            {
                "name": "tuxpaint",
                "version": VERSION,
                "task": "class retrieval, leave-one-out: class = folder name",
                "source": {"debian_package": PACKAGE, "package_version": package_version},
                "selection": __doc__.strip() if __doc__ else "",
                "classes": len(counts),
                "images": sum(counts.values()),
                "images_per_class": counts,
                "photos_found": len(kept),
                "photos_in_classes_too_small": small,
                "dropped": dropped,
                "seed": None,
            },
        )
