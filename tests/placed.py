"""Rows placed at chosen similarities to a query's vector, and an index counting its searches:
what search tests use to put an original where only one of a search's paths reaches it."""

from __future__ import annotations

from typing import Any

import numpy as np

from ris.files.identity import image_id
from ris.index.base import ImageRecord
from ris.index.milvus import MilvusIndex


def at(vector: np.ndarray, similarity: float, seed: int = 3) -> np.ndarray:
    """A unit vector whose inner product with the unit `vector` is `similarity`."""
    noise = np.random.default_rng(seed).normal(size=vector.shape).astype(np.float32)
    noise -= noise @ vector * vector
    noise /= np.linalg.norm(noise)
    return (similarity * vector + np.sqrt(1 - similarity**2) * noise).astype(np.float32)


def record(path: str, vector: np.ndarray) -> ImageRecord:
    return ImageRecord(image_id(path), path, vector, 1, 1)


class CountedSearches:
    """The real index, counting the searches asked of it."""

    def __init__(self, index: MilvusIndex):
        self.index = index
        self.searches = 0

    def search(self, *args: Any, **kwargs: Any) -> Any:
        self.searches += 1
        return self.index.search(*args, **kwargs)
