"""Each row's nearest rows in this process: the same rows and scores as exact search."""

from __future__ import annotations

import numpy as np

from ris.duplicates.neighbours import PROJECTED_DIM, TILE, nearest_rows, top_columns


def _clustered(count: int, dim: int, seed: int = 3) -> np.ndarray:
    """Unit vectors in tight clusters around a few centres, as copies sit around originals."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(count // 5, dim))
    vectors = centres[rng.integers(0, len(centres), count)] + 0.3 * rng.normal(size=(count, dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)


def _exact(vectors: np.ndarray, neighbours: int) -> tuple[np.ndarray, np.ndarray]:
    scores = vectors @ vectors.T
    np.fill_diagonal(scores, -np.inf)
    order = np.argsort(-scores, axis=1)[:, :neighbours]
    return order, np.take_along_axis(scores, order, axis=1)


def test_projected_search_finds_the_exact_nearest_with_exact_scores() -> None:
    vectors = _clustered(1500, PROJECTED_DIM + 200)  # more dimensions than the projection keeps
    positions, scores = nearest_rows(vectors, 10)
    exact_positions, exact_scores = _exact(vectors, 10)
    assert positions.shape == scores.shape == (1500, 10)
    # Never itself; scores are the full vectors' dot products, most similar first.
    assert not (positions == np.arange(1500)[:, None]).any()
    assert np.allclose(scores, np.einsum("nd,nkd->nk", vectors, vectors[positions]), atol=1e-5)
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    rows = zip(positions, exact_positions, strict=True)
    found = np.mean([len(set(mine) & set(exact)) / 10 for mine, exact in rows])
    assert found >= 0.99
    assert np.abs(scores - exact_scores).max() < 0.05


def test_few_dimensions_are_searched_exactly_and_small_sets_ask_for_what_exists() -> None:
    vectors = _clustered(300, 64)
    positions, scores = nearest_rows(vectors, 10)
    exact_positions, exact_scores = _exact(vectors, 10)
    assert np.allclose(scores, exact_scores, atol=1e-5)
    assert (positions == exact_positions).mean() > 0.99  # ties aside
    two = nearest_rows(vectors[:3], 10)
    assert two[0].shape == (3, 2) and set(two[0][0]) == {1, 2}
    assert nearest_rows(vectors[:1], 10)[0].shape == (1, 0)


def test_top_columns_are_each_rows_largest_values() -> None:
    rng = np.random.default_rng(5)
    block = rng.normal(size=(40, TILE * 50)).astype(np.float32)
    block[0, :] = 1.0  # all tied: any k of them
    block[1, : TILE * 10] = -np.inf
    block[2, rng.choice(block.shape[1], 40, replace=False)] = 9.0  # the largest share a few tiles
    block[2, 7 : 7 + 30] = 8.0
    for k in (1, 30, 49, 60):  # the last searches every column
        found = top_columns(block.copy(), k)
        assert found.shape == (40, k)
        assert all(len(set(row)) == k for row in found)
        mine = np.sort(np.take_along_axis(block, found, axis=1), axis=1)
        assert np.array_equal(mine, np.sort(block, axis=1)[:, -k:])
