"""Downloading one wheel from the package index without its dependencies, into a cache folder."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def download_wheel(requirement: str, destination: Path) -> Path:
    """The wheel of `requirement` in `destination`, downloaded (never installed) if missing."""
    destination.mkdir(parents=True, exist_ok=True)
    name = requirement.split("==")[0].replace("-", "_")
    existing = sorted(destination.glob(f"{name}-*.whl"))
    if existing:
        return existing[-1]
    log.info("downloading %s", requirement)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            str(destination),
            requirement,
        ],
        check=True,
    )
    return sorted(destination.glob(f"{name}-*.whl"))[-1]
