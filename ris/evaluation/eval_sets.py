"""Labelled evaluation sets on disk: class folders, gallery and queries, copy detection."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ris.errors import RisError
from ris.files.scan import iter_image_paths

TRUTH_FILE = "truth.json"


class EvalSetError(RisError):
    """The folder is not in one of the layouts `query eval` reads."""


@dataclass(frozen=True)
class EvalQuery:
    """One query image and the gallery paths that count as right answers for it."""

    path: str
    relevant: frozenset[str]


@dataclass(frozen=True)
class EvalSet:
    kind: Literal["class", "copy"]
    root: Path
    gallery: list[str]
    queries: list[EvalQuery]
    leave_one_out: bool
    # Queries dropped because nothing in the gallery can answer them (a class of one image).
    unanswerable: int = 0

    @property
    def gallery_root(self) -> Path:
        """The folder whose images are exactly the gallery."""
        return self.root if self.leave_one_out else self.root / "gallery"

    @property
    def layout(self) -> str:
        if self.kind == "copy":
            return "copy detection"
        return "class folders, leave-one-out" if self.leave_one_out else "class gallery/queries"


def _images_by_class(folder: Path) -> dict[str, list[str]]:
    classes: dict[str, list[str]] = defaultdict(list)
    for path in iter_image_paths(str(folder)):
        label = os.path.relpath(os.path.dirname(path), folder)
        if label == os.curdir:
            raise EvalSetError(f"{path}: images must sit in class folders under {folder}")
        classes[label].append(path)
    return dict(classes)


def _class_set(root: Path) -> EvalSet:
    gallery_dir, queries_dir = root / "gallery", root / "queries"
    leave_one_out = not gallery_dir.is_dir()
    gallery_classes = _images_by_class(root if leave_one_out else gallery_dir)
    query_classes = gallery_classes if leave_one_out else _images_by_class(queries_dir)
    queries, unanswerable = [], 0
    for label, paths in sorted(query_classes.items()):
        right_answers = frozenset(gallery_classes.get(label, []))
        for path in paths:
            relevant = right_answers - {path} if leave_one_out else right_answers
            if relevant:
                queries.append(EvalQuery(path, relevant))
            else:
                unanswerable += 1
    gallery = [path for paths in gallery_classes.values() for path in paths]
    return EvalSet("class", root, gallery, queries, leave_one_out, unanswerable)


def _copy_set(root: Path) -> EvalSet:
    gallery_dir, queries_dir = root / "gallery", root / "queries"
    try:
        truth = json.loads((root / TRUTH_FILE).read_text())
    except (OSError, ValueError) as error:
        raise EvalSetError(f"{root / TRUTH_FILE}: cannot read it: {error}") from None
    if not isinstance(truth, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in truth.items()
    ):
        raise EvalSetError(f"{root / TRUTH_FILE}: must map query file names to original names")
    gallery = list(iter_image_paths(str(gallery_dir)))
    known = set(gallery)
    queries = []
    for query_name, original_name in sorted(truth.items()):
        query, original = str(queries_dir / query_name), str(gallery_dir / original_name)
        if not os.path.isfile(query):
            raise EvalSetError(f"{query}: listed in {TRUTH_FILE} but missing")
        if original not in known:
            raise EvalSetError(f"{original}: original of {query_name} is not in the gallery")
        queries.append(EvalQuery(query, frozenset({original})))
    return EvalSet("copy", root, gallery, queries, leave_one_out=False)


def read_eval_set(folder: str | os.PathLike[str]) -> EvalSet:
    """Read the layout of `folder`; raise EvalSetError naming what is missing or wrong."""
    root = Path(os.path.abspath(folder))
    if not root.is_dir():
        raise EvalSetError(f"{root}: not a directory")
    if (root / TRUTH_FILE).exists():
        eval_set = _copy_set(root)
    elif (root / "gallery").is_dir() != (root / "queries").is_dir():
        raise EvalSetError(f"{root}: needs both gallery/ and queries/ folders, or neither")
    else:
        eval_set = _class_set(root)
    if not eval_set.gallery:
        raise EvalSetError(f"{root}: no images found")
    if not eval_set.queries:
        raise EvalSetError(f"{root}: no query has a right answer in the gallery")
    return eval_set
