"""Image identity: a stable 63-bit primary key derived from the normalised absolute path."""

from __future__ import annotations

import hashlib
import os

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


def normalise_path(path: str | os.PathLike[str]) -> str:
    """Absolute, lexically normalised path; symlinks are kept (a link is its own entry)."""
    return os.path.abspath(os.fspath(path))


def image_id(path: str | os.PathLike[str]) -> int:
    """Deterministic positive int64 id: the same path gives the same id on every host and run."""
    encoded = normalise_path(path).encode("utf-8", "surrogateescape")
    digest = hashlib.blake2b(encoded, digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def has_image_extension(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
