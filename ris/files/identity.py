"""Image identity: the normalised path, its stable 63-bit id, and how paths are stored and shown."""

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


def path_bytes(path: str) -> bytes:
    """A path as the file system names it, even when it is not valid UTF-8."""
    return path.encode("utf-8", "surrogateescape")


def display_path(path: str) -> str:
    """A path that can be printed and put in JSON: undecodable bytes shown as \\xNN."""
    return path_bytes(path).decode("utf-8", "backslashreplace")
