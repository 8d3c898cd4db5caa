"""Copy detection: `copydetect-{mild,hard}/gallery/`, `queries/`, `truth.json`, fixed seeds.

Originals (each the answer to two queries per strength) are real photos: scikit-image's and
foolbox's sample photos, reviewed photos from Debian's `opencv-doc` examples and a seeded draw
of the larger Tux Paint photos, composited on white. Distractors are other real photos: the
remaining Tux Paint photos and non-overlapping square tiles of the photographic wallpapers of
Debian's `mate-backgrounds` and `plasma-workspace-wallpapers` (tiles of near-uniform sky or
fog are skipped). Every gallery picture is RGB, at most 1024 px on its longer side, saved as
JPEG quality 95; a later picture within 3 bits (dhash) of an earlier one is dropped, so no
distractor is a near copy of an original. Both strengths share one gallery.
"""

from __future__ import annotations

import functools
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from ris.datasets import augly_edits, edits, photos, sources, tuxpaint
from ris.datasets.layout import (
    Query,
    building,
    link_gallery,
    write_gallery,
    write_json,
    write_queries,
)
from ris.datasets.samples import WHEELS, imagenet_photos, scikit_image_photos

VERSION = 1
SEED = 20251127
QUERIES_PER_ORIGINAL = 2
MAX_SIDE = 1024
MAX_TILE_SIDE = 512
# Wallpapers are cut into squares of a seventh of their height (at least 200 px).
TILE_ROWS = 7
TILE_MIN_SIDE = 200
NEAR_DUPLICATE_BITS = 3
TUX_ORIGINALS = 70
TUX_MIN_SIDE_ORIGINAL = 150  # the visible stamp's shorter side, before the white margin
TUX_MIN_SIDE_DISTRACTOR = 100

OPENCV_PACKAGE = "opencv-doc"
OPENCV_EXAMPLES = "usr/share/doc/opencv-doc/examples/"
# Photos only (no drawings, renders, logos, masks, charts), one of each stereo pair or series.
OPENCV_PHOTOS = (
    "alphamat/input_images/plant.jpg",
    "data/aero1.jpg",
    "data/aloeL.jpg",
    "data/apple.jpg",
    "data/baboon.jpg",
    "data/basketball1.png",
    "data/board.jpg",
    "data/box_in_scene.png",
    "data/building.jpg",
    "data/butterfly.jpg",
    "data/chicky_512.png",
    "data/ela_original.jpg",
    "data/fruits.jpg",
    "data/graf1.png",
    "data/home.jpg",
    "data/left.jpg",
    "data/left01.jpg",
    "data/leuvenA.jpg",
    "data/licenseplate_motion.jpg",
    "data/messi5.jpg",
    "data/orange.jpg",
    "data/rubberwhale1.png",
    "data/squirrel_cls.jpg",
    "data/stuff.jpg",
    "data/sudoku.png",
    "dnn_superres/butterfly.png",
    "hfs/data/000.jpg",
    "hfs/data/001.jpg",
    "hfs/data/002.jpg",
    "reg/home.png",
    "text/scenetext01.jpg",
    "text/scenetext02.jpg",
    "text/scenetext03.jpg",
    "text/scenetext04.jpg",
    "text/scenetext05.jpg",
    "text/scenetext06.jpg",
    "text/scenetext_segmented_word01.jpg",
    "text/scenetext_segmented_word02.jpg",
    "text/scenetext_segmented_word03.jpg",
    "text/scenetext_segmented_word04.jpg",
    "text/scenetext_segmented_word05.jpg",
)
# The photographic wallpapers (the others in these packages are drawings or renders).
WALLPAPERS = {
    "mate-backgrounds": tuple(
        f"usr/share/backgrounds/mate/nature/{name}.jpg"
        for name in (
            "Aqua",
            "Blinds",
            "Dune",
            "FreshFlower",
            "Garden",
            "GreenMeadow",
            "LadyBird",
            "RainDrops",
            "Storm",
            "TwoWings",
            "Wood",
            "YellowFlower",
        )
    ),
    "plasma-workspace-wallpapers": tuple(
        f"usr/share/wallpapers/{name}/contents/images/{size}.jpg"
        for name, size in (
            ("BytheWater", "2560x1600"),
            ("ColdRipple", "2560x1600"),
            ("DarkestHour", "2560x1600"),
            ("EveningGlow", "2560x1600"),
            ("FallenLeaf", "2560x1600"),
            ("Grey", "2560x1600"),
            ("Kite", "2560x1600"),
            ("OneStandsOut", "2560x1600"),
            ("Path", "2560x1600"),
            ("Volna", "5120x2880"),
            ("summer_1am", "2560x1600"),
        )
    ),
}


@dataclass(frozen=True)
class Picture:
    name: str  # gallery file name
    source: str  # where it comes from, for the manifest
    kind: str  # source family: skimage, foolbox, opencv, tuxpaint, wallpaper
    image: Image.Image


def _open(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image.copy()


def _slug(text: str) -> str:
    return text.replace("/", "-").rsplit(".", 1)[0]


def originals_and_distractors(cache_dir: Path) -> tuple[list[Picture], list[Picture], dict]:
    """Every gallery candidate (originals, then distractors) and the source versions."""
    originals: list[Picture] = []
    versions: dict[str, str] = {
        "scikit-image": WHEELS["skimage"][0],
        "foolbox": WHEELS["foolbox"][0],
    }
    for path in sorted(scikit_image_photos(cache_dir).iterdir()):
        image = photos.fit(_open(path), MAX_SIDE)
        originals.append(
            Picture(f"skimage-{path.stem}.jpg", f"skimage/data/{path.name}", "skimage", image)
        )
    for path in sorted(imagenet_photos(cache_dir).glob("imagenet_*.jpg")):
        image = photos.fit(_open(path), MAX_SIDE)
        originals.append(
            Picture(f"foolbox-{path.stem}.jpg", f"foolbox/data/{path.name}", "foolbox", image)
        )

    wanted = tuple(OPENCV_EXAMPLES + name for name in OPENCV_PHOTOS)
    root, versions[OPENCV_PACKAGE] = sources.debian_files(
        cache_dir, OPENCV_PACKAGE, sources.one_of(wanted)
    )
    for name in OPENCV_PHOTOS:
        image = photos.fit(_open(root / OPENCV_EXAMPLES / name), MAX_SIDE)
        originals.append(
            Picture(f"opencv-{_slug(name)}.jpg", f"{OPENCV_PACKAGE}: {name}", "opencv", image)
        )

    stamps_dir, versions[tuxpaint.PACKAGE] = tuxpaint.fetch(cache_dir)
    stamps, _ = tuxpaint.select(stamps_dir)
    large: list[Picture] = []
    medium: list[Picture] = []
    for stamp in stamps:
        raw = _open(stamp.path)
        box = raw.convert("RGBA").getchannel("A").point(lambda a: 255 if a >= 16 else 0).getbbox()
        side = min(box[2] - box[0], box[3] - box[1]) if box else 0
        if side < TUX_MIN_SIDE_DISTRACTOR:
            continue
        picture = Picture(
            f"tux-{_slug(stamp.relative)}.jpg",
            f"{tuxpaint.PACKAGE}: {stamp.relative}",
            "tuxpaint",
            photos.fit(photos.on_white(raw), MAX_SIDE),
        )
        (large if side >= TUX_MIN_SIDE_ORIGINAL else medium).append(picture)
    rng = np.random.default_rng(SEED)
    chosen = set(
        rng.choice(len(large), size=min(TUX_ORIGINALS, len(large)), replace=False).tolist()
    )
    originals += [picture for index, picture in enumerate(large) if index in chosen]
    distractors = [picture for index, picture in enumerate(large) if index not in chosen] + medium

    for package, paths in WALLPAPERS.items():
        root, versions[package] = sources.debian_files(cache_dir, package, sources.one_of(paths))
        for member in paths:
            distractors += _tiles(root / member, package, member)
    return originals, distractors, versions


def _tiles(path: Path, package: str, member: str) -> Iterator[Picture]:
    image = _open(path).convert("RGB")
    name = path.parent.parent.parent.name if package.startswith("plasma") else path.stem
    short = package.split("-")[0]
    for number, box in enumerate(
        photos.tile_boxes(*image.size, rows=TILE_ROWS, min_side=TILE_MIN_SIDE)
    ):
        tile = image.crop(box)
        if photos.has_detail(tile):
            yield Picture(
                f"wallpaper-{short}-{name}-t{number:02d}.jpg",
                f"{package}: {member} tile {box}",
                "wallpaper",
                photos.fit(tile, MAX_TILE_SIDE),
            )


def drop_near_duplicates(
    pictures: list[Picture], bits: int = NEAR_DUPLICATE_BITS
) -> tuple[list[Picture], dict[str, str]]:
    """Pictures in order, without any within `bits` of an earlier one; and what was dropped."""
    kept: list[Picture] = []
    hashes: list[int] = []
    dropped: dict[str, str] = {}
    for picture in pictures:
        code = photos.dhash(picture.image)
        twin = next(
            (kept[i].name for i, h in enumerate(hashes) if photos.hamming(h, code) <= bits), None
        )
        if twin is not None:
            dropped[picture.name] = twin
            continue
        kept.append(picture)
        hashes.append(code)
    return kept, dropped


@dataclass(frozen=True)
class Recipe:
    """One family of copy-detection sets: `<prefix>-<strength>`, sharing one gallery."""

    prefix: str
    version: int
    seed: int
    strengths: dict[str, Callable[[Image.Image, np.random.Generator], edits.Edited]]
    edits: dict[str, str]  # what each strength does, for the manifest
    selection: str  # how the photos were chosen, for the manifest
    # (originals, distractors, source versions) of the set from the cache and the pool's
    # originals, distractors and source versions (a split that fetches more adds its own)
    split: Callable[
        [Path, list[Picture], list[Picture], dict[str, str]],
        tuple[list[Picture], list[Picture], dict[str, str]],
    ]
    queries_per_original: int = QUERIES_PER_ORIGINAL


def make_queries(
    originals: list[Picture], strength: str, recipe: Recipe | None = None
) -> list[Query]:
    """The recipe's copies of each original, each from its own seeded generator."""
    recipe = recipe or RECIPE
    edit = recipe.strengths[strength]
    strength_id = list(recipe.strengths).index(strength)
    queries: list[Query] = []
    for picture in sorted(originals, key=lambda p: p.name):
        for copy in range(recipe.queries_per_original):
            seed = [recipe.seed, strength_id, zlib.crc32(picture.name.encode()), copy]
            edited = edit(picture.image, np.random.default_rng(seed))
            name = f"q{len(queries) + 1:04d}.jpg"
            queries.append(Query(name, picture.name, edited.image, edited.quality, edited.steps))
    return queries


def build(cache_dir: Path, folders: dict[str, Path], recipe: Recipe) -> None:
    """Both strengths at once (they share the gallery): folders = {"mild": path, "hard": path}."""
    originals, distractors, versions = recipe.split(
        cache_dir, *originals_and_distractors(cache_dir)
    )
    gallery, near_duplicates = drop_near_duplicates(originals + distractors)
    names = {picture.name for picture in gallery}
    originals = [picture for picture in originals if picture.name in names]
    distractors = [picture for picture in distractors if picture.name in names]
    strengths = list(folders)
    with building([folders[s] for s in strengths]) as scratch:
        for index, (strength, root) in enumerate(zip(strengths, scratch, strict=True)):
            if index == 0:
                write_gallery(root, {picture.name: picture.image for picture in gallery})
            else:
                link_gallery(scratch[0], root)
            queries = make_queries(originals, strength, recipe)
            write_queries(root, queries)
            write_json(
                root / "manifest.json",
                _manifest(
                    recipe,
                    strength,
                    gallery,
                    originals,
                    distractors,
                    queries,
                    versions,
                    near_duplicates,
                ),
            )


def _manifest(
    recipe: Recipe,
    strength: str,
    gallery: list[Picture],
    originals: list[Picture],
    distractors: list[Picture],
    queries: list[Query],
    versions: dict[str, str],
    near_duplicates: dict[str, str],
) -> dict:
    original_names = {picture.name for picture in originals}
    return {
        "name": f"{recipe.prefix}-{strength}",
        "version": recipe.version,
        "seed": recipe.seed,
        "task": "copy detection: each query's original (truth.json) should rank first in gallery/",
        "edits": recipe.edits[strength],
        "gallery": len(gallery),
        "originals": len(originals),
        "distractors": len(distractors),
        "queries": len(queries),
        "queries_per_original": recipe.queries_per_original,
        "originals_by_source": dict(sorted(Counter(p.kind for p in originals).items())),
        "distractors_by_source": dict(sorted(Counter(p.kind for p in distractors).items())),
        "sources": versions,
        "selection": recipe.selection,
        "near_duplicates_dropped": near_duplicates,
        "gallery_files": {
            p.name: {
                "role": "original" if p.name in original_names else "distractor",
                "source": p.source,
            }
            for p in gallery
        },
        "query_files": {
            query.name: {"original": query.original, "steps": query.steps} for query in queries
        },
    }


def _as_drawn(
    cache_dir: Path, originals: list[Picture], distractors: list[Picture], versions: dict[str, str]
) -> tuple[list[Picture], list[Picture], dict[str, str]]:
    return originals, distractors, versions


RECIPE = Recipe(
    prefix="copydetect",
    version=VERSION,
    seed=SEED,
    strengths=edits.STRENGTHS,
    edits={
        "mild": "one or two of: resize 0.3-0.8x, JPEG quality 20-50, rotation 2-10 degrees, "
        "horizontal flip, colour jitter 0.6-1.4, grayscale, Gaussian blur, text overlay, "
        "coloured border; saved as JPEG 95 unless JPEG was drawn",
        "hard": "crop keeping 25-50% of the area, then two or three of the mild image "
        "edits (not JPEG), then JPEG quality 20-50",
    },
    selection=__doc__.strip() if __doc__ else "",
    split=_as_drawn,
)

AUGLY_VERSION = 1
AUGLY_SEED = 20261201
AUGLY_TUX_ORIGINALS = 60
AUGLY_QUERIES_PER_ORIGINAL = 3


def _augly_split(
    tux_seed: int,
    cache_dir: Path,
    originals: list[Picture],
    distractors: list[Picture],
    versions: dict[str, str],
) -> tuple[list[Picture], list[Picture], dict[str, str]]:
    """New originals: the whole wallpapers of sources.OTHER_WALLPAPERS (no copydetect picture is
    cut from them) and a seeded draw of Tux Paint photos from the distractors (no copydetect
    query was made from them); copydetect's originals become distractors."""
    versions = dict(versions)
    wallpapers = []
    for package in sources.OTHER_WALLPAPERS:
        files, versions[package] = sources.package_images(cache_dir, package)
        for member, path in files.items():
            wallpapers.append(
                Picture(
                    f"{package.split('-')[0]}-{_slug(path.name)}.jpg",
                    f"{package}: {member}",
                    "wallpaper",
                    photos.fit(_open(path), MAX_SIDE),
                )
            )
    tux = [p.name for p in distractors if p.kind == "tuxpaint"]
    rng = np.random.default_rng(tux_seed)
    chosen = {tux[int(i)] for i in rng.choice(len(tux), AUGLY_TUX_ORIGINALS, replace=False)}
    new_originals = wallpapers + [p for p in distractors if p.name in chosen]
    return new_originals, originals + [p for p in distractors if p.name not in chosen], versions


AUGLY_RECIPE = Recipe(
    prefix="augly",
    version=AUGLY_VERSION,
    seed=AUGLY_SEED,
    strengths=augly_edits.STRENGTHS,
    edits={
        "mild": "AugLy: half the time a crop keeping 60-90% of the area, then one or two "
        "of its edits (emoji or text overlay, pasted into a web or phone screenshot, "
        "padding, rotation 5-30 degrees, flip, colour jitter, grayscale, pixelation, "
        "noise, blur, sharpening, stripes, skew, aspect ratio 0.5-2, opacity); half the "
        "time JPEG quality 15-45",
        "hard": "AugLy: a crop keeping 10-25% of the area, then two or three of the mild "
        "edits, then JPEG quality 15-45",
    },
    selection=(
        "The copydetect gallery, with other originals: the whole wallpapers of "
        + ", ".join(sources.OTHER_WALLPAPERS)
        + f" (added) and a seeded draw of {AUGLY_TUX_ORIGINALS} of its Tux Paint "
        "distractors (no copydetect query was made from them); "
        "copydetect's originals are distractors here. Edits by AugLy, not ris.datasets.edits."
    ),
    split=functools.partial(_augly_split, AUGLY_SEED),
    queries_per_original=AUGLY_QUERIES_PER_ORIGINAL,
)


def _augly_again(prefix: str, seed: int) -> Recipe:
    """The augly recipe from another seed: other edits, crops and Tux Paint originals."""
    return replace(
        AUGLY_RECIPE,
        prefix=prefix,
        seed=seed,
        split=functools.partial(_augly_split, seed),
        selection=AUGLY_RECIPE.selection + f" Seed {seed} for the edits and the draw.",
    )


# A second held-out family, made after settings had been chosen with the augly sets in view,
# so that figures on it come from copies no setting was looked at with.
AUGLY2_SEED = 20261206
AUGLY2_RECIPE = _augly_again("augly2", AUGLY2_SEED)
# A third, made after the search of pictures pasted into a query (a screenshot's photo) had been
# designed with the misses of both earlier families' mild sets in view.
AUGLY3_SEED = 20261230
AUGLY3_RECIPE = _augly_again("augly3", AUGLY3_SEED)
# A fourth, made after duplicate groups' crowd and content rules had been chosen, so that the
# augly3 pairs they still get wrong could be looked at with a family left unseen.
AUGLY4_SEED = 20270107
AUGLY4_RECIPE = _augly_again("augly4", AUGLY4_SEED)
# A fifth, made before letterboxed pictures inside screenshots were looked for, which was
# designed with augly3's and augly4's search misses in view.
AUGLY5_SEED = 20270114
AUGLY5_RECIPE = _augly_again("augly5", AUGLY5_SEED)
# Each family's recipe by its prefix: sets `<prefix>-mild` and `<prefix>-hard`.
RECIPES = {
    recipe.prefix: recipe
    for recipe in (RECIPE, AUGLY_RECIPE, AUGLY2_RECIPE, AUGLY3_RECIPE, AUGLY4_RECIPE, AUGLY5_RECIPE)
}
