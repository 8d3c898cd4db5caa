"""Candidate pairs for `query duplicates`: found in this process or asked of Milvus, the same."""

from __future__ import annotations

import numpy as np
import pytest

from ris.duplicates import candidates
from ris.duplicates.neighbours import PROJECTED_DIM
from ris.index.base import ImageRecord
from ris.index.milvus import MilvusIndex

DIM = PROJECTED_DIM + 64  # so the in-process search goes through its projection


@pytest.fixture
def clustered_index(any_milvus: str, collection: str):
    """600 rows in tight clusters (a few copies around each original), in a real Milvus."""
    rng = np.random.default_rng(11)
    centres = rng.normal(size=(150, DIM))
    vectors = centres[rng.integers(0, 150, 600)] + 0.35 * rng.normal(size=(600, DIM))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = MilvusIndex(any_milvus, collection, dim=DIM)
    index.upsert(
        [
            ImageRecord(n + 1, f"/{'a' if n % 2 else 'b'}/{n}.jpg", v, n + 100, n + 7, f"{n:032x}")
            for n, v in enumerate(vectors.astype(np.float32))
        ]
    )
    index.flush()
    yield index
    index.drop()
    index.close()


@pytest.mark.parametrize("under", ["", "/a/"])
def test_both_ways_of_finding_neighbours_give_the_same_pairs(
    clustered_index: MilvusIndex, under: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows, in_process, paths, states, crowds, nearest = candidates.candidate_pairs(
        clustered_index, 0.55, under, margin=0.0
    )
    monkeypatch.setattr(candidates, "IN_PROCESS_BYTES", 0)
    found = candidates.candidate_pairs(clustered_index, 0.55, under, margin=0.0)
    searched_rows, searched, _, searched_states, searched_crowds, searched_nearest = found
    # The file states the index holds, read with the rows (they key the feature cache).
    assert states == searched_states == clustered_index.get_file_states(list(states))
    assert len(states) == rows
    assert rows == searched_rows == (300 if under else 600)
    assert len(in_process) > rows // 2  # every cluster gives pairs
    common = in_process.keys() & searched.keys()
    # Milvus standalone's HNSW is approximate: allow it a pair or two at the margin.
    assert len(common) >= 0.98 * max(len(in_process), len(searched))
    assert max(abs(in_process[pair] - searched[pair]) for pair in common) < 1e-4
    assert all(paths[row_id].startswith(under) for pair in in_process for row_id in pair)
    # Each row's crowd, its nearest rows scoring CROWD_MIN_SCORE or more: here its cluster.
    assert crowds.keys() == searched_crowds.keys() == states.keys()
    crowd = {(row_id, other) for row_id, others in crowds.items() for other in others}
    searched_crowd = {
        (row_id, other) for row_id, others in searched_crowds.items() for other in others
    }
    assert len(crowd) > rows
    assert len(crowd & searched_crowd) >= 0.98 * max(len(crowd), len(searched_crowd))
    # Each row's nearest other row's score, which confirming a pair by its part must reach.
    assert nearest.keys() == searched_nearest.keys() == states.keys()
    same = [abs(nearest[row] - searched_nearest[row]) < 1e-4 for row in nearest]
    assert sum(same) >= 0.98 * len(same)
