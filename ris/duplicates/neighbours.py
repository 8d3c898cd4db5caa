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
# Scores held at once: a block of rows against every row, 2**26 float32 scores (256 MB), at most
# 1,024 rows.
BLOCK_SCORES = 2**26
BLOCK_ROWS = 1024
# Rows re-scored on the full vectors at once (their shortlists' vectors are gathered).
RESCORE_ROWS = 128
# Columns a block's rows are split into to find their shortlists: a row's shortlist lies in the
# tiles whose maximum reaches the shortlist-th largest tile maximum, so only those few tiles
# are searched. A row's maxima and one compare cost a tenth of partitioning the whole row.
TILE = 256

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
    # Padded with zero rows to whole tiles; their scores are set to -inf in every block.
    padded = np.zeros((-(-count // TILE) * TILE, compared.shape[1]), np.float32)
    padded[:count] = compared
    del compared
    shortlist = keep if basis is None else min(count - 1, keep * SHORTLIST_FACTOR)
    positions = np.empty((count, keep), np.int64)
    scores = np.empty((count, keep), np.float32)
    block_rows = max(1, min(BLOCK_ROWS, BLOCK_SCORES // count))
    for start in range(0, count, block_rows):
        stop = min(count, start + block_rows)
        block = padded[start:stop] @ padded.T
        block[:, count:] = -np.inf
        block[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # not itself
        candidates = top_columns(block, shortlist)
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


def top_columns(block: np.ndarray, k: int) -> np.ndarray:
    """(rows, k): the columns of each row's k largest values, in no order. The row's width
    must be a whole number of TILEs."""
    rows, columns = block.shape
    tiles = columns // TILE
    if tiles <= k:
        return np.argpartition(block, -k, axis=1)[:, -k:]
    tiled = block.reshape(rows, tiles, TILE)
    maxima = tiled.max(axis=2)
    # At least k values reach it (the k largest maxima), so every one of the k largest does.
    threshold = np.partition(maxima, -k, axis=1)[:, -k]
    row, tile = np.nonzero(maxima >= threshold[:, None])
    values = tiled[row, tile]
    which, offset = np.nonzero(values >= threshold[row][:, None])
    found_rows = row[which]
    found_columns = tile[which] * TILE + offset
    order = np.lexsort((-values[which, offset], found_rows))
    found_rows, found_columns = found_rows[order], found_columns[order]
    # Each row has at least k found, its largest first.
    starts = np.searchsorted(found_rows, np.arange(rows))
    return found_columns[starts[:, None] + np.arange(k)]
