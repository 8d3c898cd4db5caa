"""Image identity: the normalised path or canonical URL, its stable 63-bit id, how it is shown."""

from __future__ import annotations

import hashlib
import os
import re
from urllib.parse import urlsplit, urlunsplit

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


# Sources read by URL (ris.files.remote); anything else with a scheme is refused.
URL_SCHEMES = frozenset({"s3", "gs", "gcs", "http", "https"})
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def url_scheme(path: str) -> str | None:
    """The scheme of a URL (`s3`, `https`, ...), lower case; None for a file path."""
    match = _SCHEME.match(path)
    return match.group(1).lower() if match else None


def is_url(path: str | os.PathLike[str]) -> bool:
    return isinstance(path, str) and url_scheme(path) is not None


def canonical_url(url: str) -> str:
    """One spelling per object: scheme and host in lower case, no default port, no fragment;
    the path and query are kept as given (object keys are case-sensitive)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if parts.port and parts.port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{parts.port}"
    if parts.username:
        host = f"{parts.username}@{host}"
    path = parts.path or ("/" if scheme in _DEFAULT_PORTS else "")
    return urlunsplit((scheme, host, path, parts.query, ""))


def normalise_path(path: str | os.PathLike[str]) -> str:
    """Absolute, lexically normalised path (symlinks are kept: a link is its own entry), or
    the canonical form of a URL."""
    if is_url(path):
        return canonical_url(os.fspath(path))
    return os.path.abspath(os.fspath(path))


def image_id(path: str | os.PathLike[str]) -> int:
    """Deterministic positive int64 id: the same path gives the same id on every host and run."""
    encoded = normalise_path(path).encode("utf-8", "surrogateescape")
    digest = hashlib.blake2b(encoded, digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def has_image_extension(name: str) -> bool:
    if is_url(name):
        name = urlsplit(name).path
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def path_bytes(path: str) -> bytes:
    """A path as the file system names it, even when it is not valid UTF-8."""
    return path.encode("utf-8", "surrogateescape")


def display_path(path: str) -> str:
    """A path that can be printed and put in JSON: undecodable bytes shown as \\xNN."""
    return path_bytes(path).decode("utf-8", "backslashreplace")
