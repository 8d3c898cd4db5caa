"""Prune: remove index rows whose files no longer exist under a root."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from producer.scan import batched
from ris.identity import normalise_path
from ris.store import VectorStore


@dataclass
class PruneReport:
    root: str
    checked: int = 0
    removed: list[str] = field(default_factory=list)


def prune(store: VectorStore, root: str, dry_run: bool = False) -> PruneReport:
    """Delete the rows under `root` whose file is gone (deleted, renamed, moved away)."""
    root = normalise_path(root)
    prefix = root if root.endswith(os.sep) else root + os.sep
    report = PruneReport(root=root)
    gone: list[int] = []
    for identifier, path in store.iter_paths(prefix):
        report.checked += 1
        if not os.path.exists(path):
            gone.append(identifier)
            report.removed.append(path)
    if not dry_run:
        for chunk in batched(gone, 1000):
            store.delete(chunk)
    return report
