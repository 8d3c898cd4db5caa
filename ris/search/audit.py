"""Findability: can every indexed image be found? Sampled rows searched by their stored vector
and by their file, and the index's top 10 compared with exact search over every row."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ris.errors import ImageDecodeError
from ris.index.base import SearchHit, VectorIndex
from ris.search.image_search import ImageSearch

K = 10
# Two rows whose vectors are equal (the same picture at two paths) tie: either may come first.
TIE = 1e-5


@dataclass
class Unfound:
    """A sampled row that its own vector or file did not bring back first."""

    id: int
    path: str
    rank_by_vector: int | None
    rank_by_file: int | None


@dataclass
class AuditReport:
    rows: int
    sampled: int
    # Share of sampled rows found first by their stored vector / by embedding their file again.
    self_rank1: float
    self_rank1_by_file: float
    # Of the sampled rows' exact 10 nearest (brute force over every row), the share the index
    # returned in its top 10.
    recall_at_10: float
    files_unreadable: int
    unfound: list[Unfound] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rank(hits: list[SearchHit], row_id: int) -> int | None:
    """1 when `row_id` is first or tied with the first; else its rank, or None if absent."""
    for position, hit in enumerate(hits, start=1):
        if hit.id == row_id:
            return 1 if hits[0].score - hit.score <= TIE else position
    return None


def exact_top(
    blocks: Iterable[tuple[np.ndarray, np.ndarray]], queries: np.ndarray, k: int = K
) -> list[set[int]]:
    """The ids of each query's k nearest rows by brute force over (ids, vectors) blocks,
    keeping only the best k so far: the rows never all sit in memory at once."""
    best_ids = np.zeros((len(queries), 0), np.int64)
    best_scores = np.zeros((len(queries), 0), np.float32)
    for ids, vectors in blocks:
        scores = np.concatenate([best_scores, queries @ vectors.T], axis=1)
        candidates = np.concatenate([best_ids, np.broadcast_to(ids, (len(queries), len(ids)))], 1)
        keep = np.argsort(-scores, axis=1)[:, :k]
        best_scores = np.take_along_axis(scores, keep, 1)
        best_ids = np.take_along_axis(candidates, keep, 1)
    return [set(row.tolist()) for row in best_ids]


def audit(
    index: VectorIndex,
    search: ImageSearch,
    sample: int,
    seed: int = 0,
    on_progress: Callable[[str], None] = lambda step: None,
) -> AuditReport:
    """Search `sample` random rows (all when there are fewer) by vector and by file."""
    on_progress("sampling rows")
    chosen: list[tuple[int, str]] = []
    rng = random.Random(seed)
    seen = 0
    for row in index.iter_paths():  # reservoir sampling: one pass, `sample` rows kept
        seen += 1
        if len(chosen) < sample:
            chosen.append(row)
        elif (slot := rng.randrange(seen)) < sample:
            chosen[slot] = row
    if not chosen:
        return AuditReport(seen, 0, 1.0, 1.0, 1.0, 0)
    stored = index.get_vectors([row_id for row_id, _ in chosen])
    chosen = [row for row in chosen if row[0] in stored]
    vectors = np.stack([stored[row_id] for row_id, _ in chosen])
    on_progress("searching by stored vector")
    by_vector = index.search(vectors, K)
    on_progress("exact search over every row")
    exact = exact_top(((page.ids, page.vectors) for page in index.iter_rows()), vectors)
    on_progress("searching by file")
    by_file = search.search_many([path for _, path in chosen], K)
    unfound, found_by_vector, found_by_file, unreadable, overlap = [], 0, 0, 0, 0
    for (row_id, path), hits, truth, outcome in zip(chosen, by_vector, exact, by_file, strict=True):
        vector_rank = _rank(hits, row_id)
        overlap += len(truth & {hit.id for hit in hits})
        if isinstance(outcome, ImageDecodeError):
            unreadable += 1
            file_rank = None
        else:
            file_hits = [SearchHit(r.id, r.path, r.score) for r in outcome.results]
            file_rank = _rank(sorted(file_hits, key=lambda h: -h.score), row_id)
        found_by_vector += vector_rank == 1
        found_by_file += file_rank == 1
        if vector_rank != 1 or (file_rank != 1 and not isinstance(outcome, ImageDecodeError)):
            unfound.append(Unfound(row_id, path, vector_rank, file_rank))
    readable = len(chosen) - unreadable
    return AuditReport(
        rows=seen,
        sampled=len(chosen),
        self_rank1=found_by_vector / len(chosen),
        self_rank1_by_file=found_by_file / readable if readable else 1.0,
        recall_at_10=overlap / sum(len(truth) for truth in exact),
        files_unreadable=unreadable,
        unfound=unfound,
    )
