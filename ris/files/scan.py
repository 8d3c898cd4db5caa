"""Streaming directory scan: yields image paths one at a time, never the whole list."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

from ris.files.identity import has_image_extension, normalise_path

log = logging.getLogger(__name__)
T = TypeVar("T")


def iter_image_paths(root: str) -> Iterator[str]:
    """Absolute paths of files with an image extension under `root`, in a stable order.

    Symlinked directories are not followed (no loops); symlinked files are yielded, and a
    broken one is reported by the worker like any other unreadable file.
    """
    root = normalise_path(root)
    if not os.path.isdir(root):
        if has_image_extension(root):
            yield root
        return
    pending = [root]
    while pending:
        directory = pending.pop()
        try:
            with os.scandir(directory) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as error:
            log.warning("skipping unreadable directory %s: %s", directory, error.strerror)
            continue
        subdirectories = []
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                subdirectories.append(entry.path)
            elif has_image_extension(entry.name):
                yield entry.path
        # Reversed so the stack pops subdirectories in name order.
        pending.extend(reversed(subdirectories))


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk
