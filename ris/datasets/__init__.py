"""Tooling. Development datasets for retrieval quality, fetched from package registries, cached.

`dataset_path(name, cache_dir)` returns `<cache_dir>/datasets/<name>/`, building it first if it
is missing or was made by an older recipe. Names and layouts:

- `tuxpaint`: `tuxpaint/<class>/*.png`, Tux Paint's photographed stamps by folder (class
  retrieval, leave one out);
- `foolbox`: `foolbox/<imagenet class index>/*.jpg`, foolbox's 20 labelled ImageNet photos;
- `copydetect-mild`, `copydetect-hard`: `gallery/*.jpg`, `queries/*.jpg` and `truth.json`
  (query file name -> gallery file name);
- `augly-mild`, `augly-hard`: the same layout, other originals, edits made by AugLy (held out:
  no setting is chosen on them);
- `augly2-mild`, `augly2-hard`: the augly recipe from another seed, held out from changes made
  after the augly sets' misses had been looked at;
- `augly3-mild`, `augly3-hard`: the same from a third seed, held out from the search of pasted
  pictures, designed with both earlier families' mild misses in view.
- `augly4-mild`, `augly4-hard`: the same from a fourth seed, held out from duplicate groups'
  rules chosen with augly3's wrong pairs in view.
- `augly5-mild`, `augly5-hard`: the same from a fifth seed, held out from the search of
  letterboxed pictures inside screenshots, designed with augly3's and augly4's misses in view.

Each holds a `manifest.json` (counts, sources and their versions, seed, selection rules).
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable
from pathlib import Path

from ris.datasets import copydetect, foolbox, tuxpaint
from ris.datasets.layout import is_current

_VERSIONS = {
    "tuxpaint": tuxpaint.VERSION,
    "foolbox": foolbox.VERSION,
    **{
        f"{prefix}-{strength}": recipe.version
        for prefix, recipe in copydetect.RECIPES.items()
        for strength in recipe.strengths
    },
}
NAMES = tuple(_VERSIONS)


def datasets_dir(cache_dir: Path) -> Path:
    return Path(cache_dir) / "datasets"


def _default_cache_dir() -> Path:
    from ris.settings import load_settings

    return load_settings().cache_dir


def _builder(name: str, root: Path) -> Callable[[Path], None]:
    if name == "tuxpaint":
        return lambda cache_dir: tuxpaint.build(cache_dir, root / "tuxpaint")
    if name == "foolbox":
        return lambda cache_dir: foolbox.build(cache_dir, root / "foolbox")
    # Both strengths of a copy-detection family share one gallery, so they are built together.
    recipe = copydetect.RECIPES[name.rsplit("-", 1)[0]]
    folders = {strength: root / f"{recipe.prefix}-{strength}" for strength in recipe.strengths}
    return lambda cache_dir: copydetect.build(cache_dir, folders, recipe)


def is_ready(name: str, cache_dir: Path) -> bool:
    return is_current(datasets_dir(cache_dir) / name, _VERSIONS[name])


def dataset_path(name: str, cache_dir: Path | None = None, *, fetch: bool = True) -> Path:
    """The folder of dataset `name`, built (downloading its sources) if needed and `fetch`."""
    if name not in NAMES:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(NAMES)}")
    cache_dir = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    folder = datasets_dir(cache_dir) / name
    if is_ready(name, cache_dir):
        return folder
    if not fetch:
        raise FileNotFoundError(f"dataset {name} is not built under {folder}")
    folder.parent.mkdir(parents=True, exist_ok=True)
    # One builder at a time: a second process waits, then finds the dataset ready.
    with open(folder.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not is_ready(name, cache_dir):
            _builder(name, datasets_dir(cache_dir))(cache_dir)
    return folder


__all__ = ["NAMES", "dataset_path", "datasets_dir", "is_ready"]
