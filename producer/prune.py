"""Prune: remove index rows whose files no longer exist under a root, or among given paths."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ris.files.identity import image_id, is_url, normalise_path
from ris.files.scan import batched
from ris.index.base import VectorIndex


@dataclass
class PruneReport:
    root: str
    checked: int = 0
    removed: list[str] = field(default_factory=list)


def _remove_gone(
    index: VectorIndex,
    rows: Iterable[tuple[int, str]],
    report: PruneReport,
    dry_run: bool,
    exists: Callable[[str], bool] = os.path.exists,
) -> PruneReport:
    """Delete those of `rows` (id, path) whose file does not exist; counted in `report`."""
    gone: list[int] = []
    for identifier, path in rows:
        report.checked += 1
        if not exists(path):
            gone.append(identifier)
            report.removed.append(path)
    if not dry_run:
        for chunk in batched(gone, 1000):
            index.delete(chunk)
    return report


def prune(
    index: VectorIndex,
    root: str,
    dry_run: bool = False,
    exists: Callable[[str], bool] = os.path.exists,
) -> PruneReport:
    """Delete the rows under `root` (a folder or URL prefix) whose file or object is gone
    (deleted, renamed, moved away); `exists` says which are there (a listing, for URLs)."""
    root = normalise_path(root)
    separator = "/" if is_url(root) else os.sep
    prefix = root if root.endswith(separator) else root + separator
    report = PruneReport(root=root)
    return _remove_gone(index, index.iter_paths(prefix), report, dry_run, exists)


def prune_paths(index: VectorIndex, paths: Iterable[str], label: str = "") -> PruneReport:
    """Delete the rows of those `paths` whose file is gone (a deletion seen as it happened)."""
    ids = list({image_id(path) for path in paths})
    rows = (row for chunk in batched(ids, 1000) for row in index.get_paths(chunk).items())
    return _remove_gone(index, rows, PruneReport(root=label), dry_run=False)
