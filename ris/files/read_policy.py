"""Which files and URLs a worker may read: valid UTF-8, under the allowed roots or prefixes."""

from __future__ import annotations

import os

from ris.files.identity import URL_SCHEMES, is_url, url_scheme


def _url_refusal(url: str, allowed_roots: list[str]) -> str | None:
    if url_scheme(url) not in URL_SCHEMES:
        return f"unsupported URL scheme (use {', '.join(sorted(URL_SCHEMES))})"
    prefixes = [root for root in allowed_roots if is_url(root)]
    if allowed_roots and not any(
        url == root or url.startswith(root.rstrip("/") + "/") for root in prefixes
    ):
        return "outside the allowed roots (RIS_ALLOWED_ROOTS)"
    return None


def refusal_reason(path: str, allowed_roots: list[str]) -> str | None:
    """Why `path` must not be read, or None when it may be.

    Roots are compared with the file's real path, so a symlink inside an allowed root that
    points outside it is refused too. `allowed_roots` must already be real paths.
    """
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not valid UTF-8 (rename the file to index it)"
    if is_url(path):
        return _url_refusal(path, allowed_roots)
    if not os.path.isabs(path):
        return "path is not absolute"
    folders = [root for root in allowed_roots if not is_url(root)]
    if allowed_roots:
        real = os.path.realpath(path)
        if not any(
            real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in folders
        ):
            return "outside the allowed roots (RIS_ALLOWED_ROOTS)"
    return None
