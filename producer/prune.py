"""Prune: remove index rows whose files no longer exist under a root."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ris.files.identity import normalise_path
from ris.files.scan import batched
from ris.index.base import VectorIndex


@dataclass
class PruneReport:
    root: str
    checked: int = 0
    removed: list[str] = field(default_factory=list)


def prune(index: VectorIndex, root: str, dry_run: bool = False) -> PruneReport:
    """Delete the rows under `root` whose file is gone (deleted, renamed, moved away)."""
    root = normalise_path(root)
    prefix = root if root.endswith(os.sep) else root + os.sep
    report = PruneReport(root=root)
    gone: list[int] = []
    for identifier, path in index.iter_paths(prefix):
        report.checked += 1
        if not os.path.exists(path):
            gone.append(identifier)
            report.removed.append(path)
    if not dry_run:
        for chunk in batched(gone, 1000):
            index.delete(chunk)
    return report
