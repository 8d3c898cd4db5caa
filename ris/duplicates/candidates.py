"""Candidate pairs for duplicate groups: each row's nearest rows, by blocked matrix products over
the collection's own vectors or by batched index searches, kept when similar and standing out from
their neighbourhoods. No n x n matrix is ever held: each block of rows keeps only its nearest."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np

from ris.duplicates.neighbours import nearest_rows
from ris.files.changes import FileState
from ris.index.base import RowFilter, RowPage, VectorIndex

# Nearest rows each row is compared with. A group larger than this still comes out whole: its
# members link to one another in chains, and union-find joins the chains.
NEIGHBOURS = 10
# Collections whose vectors take at most this many bytes (100,000 rows of the default 2,560-d
# model are 1 GB) find each row's nearest in this process, by matrix products over the vectors
# read once (neighbours.py): exact scores, the same neighbours for 99.6-99.8% of rows,
# and far faster than one index search per row on Milvus Lite's brute force. Larger ones ask the
# index in batches, where a server's ANN index keeps the cost growing with n log n, not n^2.
IN_PROCESS_BYTES = 2 * 1024**3
# Rows searched in one index request.
SEARCH_BATCH = 256
# Vectors this close are one picture (the same file, or it re-encoded at the same size); the
# closest pair of different pictures on the development sets scored 0.989.
IDENTICAL_SCORE = 0.995
# A picture of a verified pair is also matched with its nearest rows this similar that were no
# candidates with it (they did not stand out of a crowd: screenshots of one app, pages of one
# template), so that features it shares with all of them count as recurring. Chosen on augly:
# 0.7 gave the same groups as every nearest row, with a tenth of the matches (docs/BENCHMARKS.md,
# "Stretched copies, crowds and content").
CROWD_MIN_SCORE = 0.7

# (stage, done, total)
Progress = Callable[[str, int, int], None]


class Candidates(NamedTuple):
    """The pairs worth checking, and what was read of their rows."""

    rows: int  # rows searched
    pairs: dict[tuple[int, int], float]  # (smaller id, larger id): score
    paths: dict[int, str]
    states: dict[int, FileState]  # the file state the index holds of each row read
    crowds: dict[int, list[int]]  # each row's nearest rows scoring at least CROWD_MIN_SCORE
    nearest: dict[int, float]  # each row's nearest other row's score


def candidate_pairs(
    index: VectorIndex,
    min_score: float,
    under: str = "",
    neighbours: int = NEIGHBOURS,
    margin: float | None = None,
    on_progress: Progress = lambda stage, done, total: None,
) -> Candidates:
    """The pairs at or above `min_score` (and, with a `margin`, standing out by it). Every row
    under `under` searches the same rows for its `neighbours` nearest."""
    pairs: dict[tuple[int, int], float] = {}
    # Filled as the rows are read.
    read = Candidates(0, pairs, {}, {}, {}, {})
    total = index.count(under)
    # Each row's `neighbours`-th nearest score: how crowded its neighbourhood is.
    crowd: dict[int, float] = {}
    done = 0
    on_progress("searching", 0, total)
    if total * index.dim * 4 <= IN_PROCESS_BYTES:
        nearest = _nearest_in_process(index, under, total, neighbours, read, on_progress)
    else:
        nearest = _nearest_from_index(index, under, neighbours, read, total, on_progress)
    for row_id, others in nearest:
        done += 1
        crowd[row_id] = others[-1][1] if len(others) == neighbours else -1.0
        read.crowds[row_id] = [other for other, score in others if score >= CROWD_MIN_SCORE]
        read.nearest[row_id] = others[0][1] if others else -1.0
        for other_id, score in others:
            if score >= min_score:
                key = (min(row_id, other_id), max(row_id, other_id))
                pairs[key] = max(pairs.get(key, -1.0), score)
    if margin is not None:
        pairs = {
            pair: score
            for pair, score in pairs.items()
            if score >= IDENTICAL_SCORE
            or score - (crowd.get(pair[0], -1.0) + crowd.get(pair[1], -1.0)) / 2 >= margin
        }
    return read._replace(rows=done, pairs=pairs)


def _remember(read: Candidates, page: RowPage) -> None:
    """Keep the paths and file states of a page's rows."""
    ids = page.ids.tolist()
    read.paths.update(zip(ids, page.paths, strict=True))
    read.states.update(zip(ids, page.states, strict=True))


Nearest = Iterator[tuple[int, list[tuple[int, float]]]]


def _nearest_in_process(
    index: VectorIndex,
    under: str,
    total: int,
    neighbours: int,
    read: Candidates,
    on_progress: Progress,
) -> Nearest:
    """Each row's nearest (id, score), most similar first, from the rows' vectors read once
    into one array (`total` rows expected; rows written meanwhile are taken too)."""
    ids = np.empty(total, np.int64)
    vectors = np.empty((total, index.dim), np.float32)
    count = 0
    for page in index.iter_rows(under):
        if count + len(page.ids) > len(ids):  # rows added since they were counted
            grown = max(2 * len(ids), count + len(page.ids))
            ids = np.resize(ids, grown)
            vectors = np.resize(vectors, (grown, index.dim))
        ids[count : count + len(page.ids)] = page.ids
        vectors[count : count + len(page.ids)] = page.vectors
        _remember(read, page)
        count += len(page.ids)
    if count == 0:
        return
    ids, vectors = ids[:count], vectors[:count]
    positions, scores = nearest_rows(
        vectors, neighbours, lambda done, total: on_progress("searching", done, total)
    )
    del vectors
    for row_id, row_positions, row_scores in zip(ids.tolist(), positions, scores, strict=True):
        yield row_id, list(zip(ids[row_positions].tolist(), row_scores.tolist(), strict=True))


def _nearest_from_index(
    index: VectorIndex,
    under: str,
    neighbours: int,
    read: Candidates,
    total: int,
    on_progress: Progress,
) -> Nearest:
    """Each row's nearest (id, score), most similar first, asked of the index in batches."""
    where = RowFilter(prefixes=(under,)) if under else None
    done = 0
    for page in index.iter_rows(under):
        _remember(read, page)
        for start in range(0, len(page.ids), SEARCH_BATCH):
            ids = page.ids[start : start + SEARCH_BATCH]
            found = index.search(page.vectors[start : start + SEARCH_BATCH], neighbours + 1, where)
            for row_id, hits in zip(ids.tolist(), found, strict=True):
                read.paths.update((hit.id, hit.path) for hit in hits)
                yield row_id, [(hit.id, hit.score) for hit in hits if hit.id != row_id][:neighbours]
            done += len(ids)
            on_progress("searching", done, max(total, done))
