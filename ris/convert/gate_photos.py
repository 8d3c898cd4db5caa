"""Tooling. The quality gate's photos, decoded at the model's input and stored beside the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ris.datasets.samples import sample_photos
from ris.embedding.imaging import load_image
from ris.embedding.models import ModelSpec, gate_images_path


def write_gate_images(spec: ModelSpec, cache_dir: Path) -> Path:
    """The 36 sample photos (from package wheels) as one uint8 array, so a host can check a
    runtime's precision without fetching anything."""
    path = gate_images_path(spec, cache_dir)
    images = np.stack(
        [load_image(str(photo), spec.input_size, 10**9) for photo in sample_photos(cache_dir)]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.npy")
    np.save(temporary, images)
    temporary.replace(path)
    return path
