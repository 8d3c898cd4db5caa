"""Benchmark stand-in for the embedding pipeline: a fixed hold per batch, made-up unit vectors."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from ris.embedding.pipeline import EmbeddedBatch
from ris.files.identity import image_id


def stand_in_vector(path: str, dim: int) -> np.ndarray:
    """A unit vector seeded from the path's id: the same path gives the same vector anywhere."""
    vector = np.random.default_rng(image_id(path)).standard_normal(dim, dtype=np.float32)
    return vector / np.linalg.norm(vector)


class HoldPipeline:
    """Sleeps `seconds` per batch (no CPU, like a GPU busy elsewhere) instead of decoding and
    embedding, so a benchmark measures the queue, the bookkeeping and the upserts. Files are
    not opened: every path "embeds"; one that is missing fails later, when it is stat'ed."""

    def __init__(self, seconds: float, dim: int):
        self.seconds = seconds
        self.dim = dim

    def __call__(self, sources: Sequence[str]) -> EmbeddedBatch[str]:
        paths = list(sources)
        if paths:
            time.sleep(self.seconds)
        vectors = np.zeros((len(paths), self.dim), dtype=np.float32)
        for row, path in enumerate(paths):
            vectors[row] = stand_in_vector(path, self.dim)
        return EmbeddedBatch(paths=paths, vectors=vectors)
