"""The vector index interface: the records it takes and returns, and what every index can do.

Workers, the producer, prune and search are typed against `VectorIndex`; `ris.index.milvus`
implements it. An implementation raises only the project's errors: `ServiceUnavailableError`
for an outage it could not ride out, another `RisError` for a request that cannot succeed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ris.files.changes import FileState


@dataclass(frozen=True)
class ImageRecord:
    """One indexed image: its id, path, unit vector and the file state it was embedded from."""

    id: int
    path: str
    vector: np.ndarray
    size: int
    mtime_ns: int
    content_hash: str = ""


@dataclass(frozen=True)
class SearchHit:
    """One nearest neighbour of a query vector: inner product of unit vectors as `score`, and
    the file state the index holds of the row (what its kept local features are found by)."""

    id: int
    path: str
    score: float
    state: FileState | None = None


@dataclass(frozen=True)
class RowPage:
    """Rows read together: their ids, paths, (n, dim) vectors and the file states they were
    embedded from, in one order."""

    ids: np.ndarray
    paths: list[str]
    vectors: np.ndarray
    states: list[FileState]


@dataclass(frozen=True)
class RowFilter:
    """Which rows a search may return; every condition given must hold. The index applies it
    before ranking, so a search returns its k nearest among the rows that pass."""

    # The row's path starts with one of these (folders end with a separator).
    prefixes: tuple[str, ...] = ()
    # The file's modification time was at or after `modified_since_ns`, before `modified_before_ns`.
    modified_since_ns: int | None = None
    modified_before_ns: int | None = None

    def __bool__(self) -> bool:
        return (
            bool(self.prefixes)
            or self.modified_since_ns is not None
            or (self.modified_before_ns is not None)
        )


class VectorIndex(Protocol):
    """One collection of image vectors, keyed by image id."""

    collection: str
    dim: int

    def ensure_collection(self) -> None:
        """Create the collection if missing and make it searchable (writers call this)."""

    def require_collection(self) -> None:
        """Raise CollectionMissingError unless the collection exists (readers call this)."""

    def exists(self) -> bool: ...

    def upsert(self, records: Sequence[ImageRecord]) -> int:
        """Insert or replace rows by id; returns how many were written."""

    def flush(self) -> None:
        """Make everything written so far durable and quick to search."""

    def search(
        self, vectors: np.ndarray, top_k: int, where: RowFilter | None = None
    ) -> list[list[SearchHit]]:
        """The `top_k` nearest rows that pass `where`, for each of the (n, dim) `vectors`."""

    def get_file_states(self, ids: list[int]) -> dict[int, FileState]:
        """What the index holds of each of `ids` that it has; {} when there is no collection."""

    def get_paths(self, ids: list[int]) -> dict[int, str]: ...

    def iter_paths(self, prefix: str = "") -> Iterator[tuple[int, str]]:
        """(id, path) of every row whose path starts with `prefix`."""

    def iter_rows(self, prefix: str = "", vectors: bool = True) -> Iterator[RowPage]:
        """Every row whose path starts with `prefix`, a page at a time; without `vectors`,
        each page's vectors are (n, 0)."""

    def get_vectors(self, ids: list[int]) -> dict[int, np.ndarray]: ...

    def count(self, prefix: str = "") -> int:
        """Rows whose path starts with `prefix`."""

    def delete(self, ids: list[int]) -> None: ...

    def drop(self) -> None: ...

    def close(self) -> None: ...
