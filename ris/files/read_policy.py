"""Which files a worker may read: names that are valid UTF-8, under the allowed roots."""

from __future__ import annotations

import os


def refusal_reason(path: str, allowed_roots: list[str]) -> str | None:
    """Why `path` must not be read, or None when it may be.

    Roots are compared with the file's real path, so a symlink inside an allowed root that
    points outside it is refused too. `allowed_roots` must already be real paths.
    """
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not valid UTF-8 (rename the file to index it)"
    if not os.path.isabs(path):
        return "path is not absolute"
    if allowed_roots:
        real = os.path.realpath(path)
        if not any(
            real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in allowed_roots
        ):
            return "outside the allowed roots (RIS_ALLOWED_ROOTS)"
    return None
