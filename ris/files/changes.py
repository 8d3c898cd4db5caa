"""Change detection: what the index remembers of a file, and whether the file changed since."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class FileState:
    """What the index remembers of a file, to tell whether it changed since."""

    size: int
    mtime_ns: int
    content_hash: str


def content_hash(path: str) -> str:
    """A 128-bit BLAKE2 digest of the file's bytes, as hex."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, lambda: hashlib.blake2b(digest_size=16)).hexdigest()


def file_state(path: str) -> tuple[int, int]:
    """(size, mtime_ns) of a file, or (-1, -1) when it cannot be stat'ed (a broken link)."""
    try:
        stat = os.stat(path)
    except OSError:
        return (-1, -1)
    return (stat.st_size, stat.st_mtime_ns)


def is_unchanged(path: str, indexed: FileState | None, compare_hash: bool) -> bool:
    """True when the index holds this file as it is now (by size and mtime, or content hash)."""
    if indexed is None:
        return False
    try:
        stat = os.stat(path)
        if stat.st_size != indexed.size:
            return False
        if compare_hash:
            return bool(indexed.content_hash) and content_hash(path) == indexed.content_hash
    except OSError:
        return False
    return stat.st_mtime_ns == indexed.mtime_ns
