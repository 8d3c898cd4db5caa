"""Each row's nearest other rows among a set of vectors, in this process: blocks of rows scored
against all rows on a few principal directions, each row's shortlist re-scored exactly."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# Dimensions the rows are first compared on. Dot products between unit vectors are kept best,
# for a given count, by the top eigenvectors of the vectors' second moment (uncentred PCA).
PROJECTED_DIM = 256
# Rows the projection is fitted on.
PROJECTION_SAMPLE = 20_000
# Each row's nearest on the projection, this many times the neighbours asked for, are re-scored
# on the full vectors; the exact nearest are kept.
SHORTLIST_FACTOR = 3
# Scores held at once: a block of rows against every row, float32 scores and the int64 positions
# the shortlist is partitioned with (2**26 of each: 256 MB and 512 MB), at most 1,024 rows.
BLOCK_SCORES = 2**26
BLOCK_ROWS = 1024
# Rows re-scored on the full vectors at once (their shortlists' vectors are gathered).
RESCORE_ROWS = 128

Progress = Callable[[int, int], None]


def projection(vectors: np.ndarray, dim: int = PROJECTED_DIM, seed: int = 0) -> np.ndarray | None:
    """A (vectors' dim, `dim`) basis for the first comparison; None when the vectors have no
    more dimensions than that."""
    if vectors.shape[1] <= dim:
        return None
    rows = np.random.default_rng(seed).choice(
        len(vectors), min(len(vectors), PROJECTION_SAMPLE), replace=False
    )
    sample = vectors[np.sort(rows)].astype(np.float32)
    _, eigenvectors = np.linalg.eigh((sample.T @ sample).astype(np.float64))
    return np.ascontiguousarray(eigenvectors[:, -dim:][:, ::-1], dtype=np.float32)


def nearest_rows(
    vectors: np.ndarray,
    neighbours: int,
    on_progress: Progress = lambda done, total: None,
) -> tuple[np.ndarray, np.ndarray]:
    """(positions, scores), each (n, min(neighbours, n - 1)): every row's nearest other rows by
    dot product, most similar first, with exact scores."""
    count = len(vectors)
    keep = min(neighbours, count - 1)
    if keep <= 0:
        return np.zeros((count, 0), np.int64), np.zeros((count, 0), np.float32)
    basis = projection(vectors)
    compared = vectors if basis is None else vectors @ basis
    shortlist = keep if basis is None else min(count - 1, keep * SHORTLIST_FACTOR)
    positions = np.empty((count, keep), np.int64)
    scores = np.empty((count, keep), np.float32)
    block_rows = max(1, min(BLOCK_ROWS, BLOCK_SCORES // count))
    for start in range(0, count, block_rows):
        stop = min(count, start + block_rows)
        block = compared[start:stop] @ compared.T
        block[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # not itself
        candidates = np.argpartition(block, -shortlist, axis=1)[:, -shortlist:]
        del block
        for first in range(start, stop, RESCORE_ROWS):
            last = min(stop, first + RESCORE_ROWS)
            rows = candidates[first - start : last - start]
            exact = np.einsum("rd,rkd->rk", vectors[first:last], vectors[rows])
            order = np.argsort(-exact, axis=1, kind="stable")[:, :keep]
            positions[first:last] = np.take_along_axis(rows, order, axis=1)
            scores[first:last] = np.take_along_axis(exact, order, axis=1)
        on_progress(stop, count)
    return positions, scores
