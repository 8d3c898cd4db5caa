"""Pairs of pictures sharing many local features, whatever their vectors say: every picture's
SIFT descriptors in one inverted-file index, each descriptor's nearest in other pictures voting
for them. A small crop's vector may be far from its original's; its features are not."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import faiss
import numpy as np

from ris.search.verify import LocalFeatures, mirrored

# Nearest descriptors each descriptor is looked up with (itself among them).
VOTE_NEIGHBOURS = 10
# Two RootSIFT descriptors this close (squared L2 of unit vectors: 2 - 2 cos) are one feature.
VOTE_DISTANCE = 0.15
# Partners each picture keeps, the most votes first, and the votes a partner needs. Chosen on
# augly (docs/BENCHMARKS.md, "Candidates by shared features").
VOTED_PARTNERS = 5
MIN_VOTES = 5
# Fewer descriptors than this are searched exactly. More go into an inverted file: one list per
# DESCRIPTORS_PER_CELL, at most MAX_CELLS (the coarse quantizer is a flat search), PROBES of
# them searched per lookup, each descriptor held as CODE_BYTES of product-quantizer code (and an
# 8-byte id). Chosen on augly and timed at 10,284 pictures (docs/BENCHMARKS.md, "Candidates by
# shared features"): 8-bit scalar codes (136 bytes) were no better and 1.7 times as slow. The
# codes are 4-bit ones scanned with SIMD shuffles (faiss' fast scan: 64 sub-quantizers of 4
# bits, rather than 32 of 8): lookups took 43% of the time on 3,000 pictures of augly and
# augly2 and proposed 476 of their 477 true pairs that 8-bit codes proposed ("Shared features
# looked up by fast scan").
EXACT_BELOW = 20_000
DESCRIPTORS_PER_CELL = 256
MAX_CELLS = 4096
PROBES = 8
CODE_BYTES = 32
CODE_BITS = 4
# Descriptors the coarse quantizer is trained on: per list (faiss asks for at least 39), and at
# least CODE_TRAINING for the product quantizer's centroids per sub-vector (16 of 4 bits).
TRAINING_PER_CELL = 40
CODE_TRAINING = 20_000
# Pictures whose descriptors are added or looked up at once.
PICTURE_BATCH = 256
SEED = 20261206

Features = Callable[[int], LocalFeatures | None]
Progress = Callable[[str, int, int], None]


def root_sift(descriptors: np.ndarray) -> np.ndarray:
    """RootSIFT (Arandjelovic and Zisserman): L1-normalised, square-rooted, so unit L2 length;
    Euclidean distance on it is the Hellinger kernel on the original histograms."""
    total = np.maximum(descriptors.sum(axis=1, keepdims=True), 1e-9)
    return np.sqrt(descriptors / total).astype(np.float32)


def voted_pairs(
    features: Features,
    pictures: int,
    partners: int = VOTED_PARTNERS,
    min_votes: int = MIN_VOTES,
    on_progress: Progress = lambda stage, done, total: None,
) -> dict[tuple[int, int], int]:
    """(position, position) -> votes, smaller position first, among pictures 0..`pictures`-1
    (`features` gives each one's; None when unreadable): each picture's `partners` most voted
    others with at least `min_votes`. A vote is one of a picture's descriptors finding one of
    another's among its nearest, counted once per descriptor and other picture; a pair's votes
    are those of both its pictures, as they are or (a mirrored copy) with the descriptors
    looked up flipped left to right, whichever are more. The descriptors are held as 32-byte
    codes (and an id: 40 bytes each)."""
    counts = np.zeros(pictures, np.int64)
    for position in range(pictures):
        found = features(position)
        counts[position] = 0 if found is None else len(found.descriptors)
    total = int(counts.sum())
    if total < 2:
        return {}
    owner = np.repeat(np.arange(pictures), counts)
    index = _trained_index(features, counts)
    for start, batch in _batches(features, pictures):
        index.add(batch)
        on_progress("indexing features", min(pictures, start + PICTURE_BATCH), pictures)
    # A pair's votes as the pictures are, and with one of them mirrored (its descriptors looked
    # up flipped left to right): the larger counts.
    counted = [
        _looked_up(index, features, owner, pictures, flip, on_progress) for flip in (False, True)
    ]
    codes, where = np.unique(np.concatenate([codes for codes, _ in counted]), return_inverse=True)
    votes = np.zeros(len(codes), np.int64)
    np.maximum.at(votes, where, np.concatenate([tally for _, tally in counted]))
    return _best_partners(codes, votes, pictures, partners, min_votes)


def _looked_up(
    index: faiss.Index,
    features: Features,
    owner: np.ndarray,
    pictures: int,
    flip: bool,
    on_progress: Progress,
) -> tuple[np.ndarray, np.ndarray]:
    """(pair codes, votes) of every picture's descriptors looked up (flipped when `flip`):
    a pair's code is smaller * pictures + larger."""
    codes, tallies = [], []
    first_descriptor = 0
    stage = "matching mirrored features" if flip else "matching features"
    for start, batch in _batches(features, pictures, flip):
        distances, nearest = index.search(batch, VOTE_NEIGHBOURS)
        looked_up = owner[first_descriptor : first_descriptor + len(batch)]
        first_descriptor += len(batch)
        batch_codes, batch_tallies = _votes(owner, looked_up, distances, nearest, pictures)
        codes.append(batch_codes)
        tallies.append(batch_tallies)
        on_progress(stage, min(pictures, start + PICTURE_BATCH), pictures)
    every, where = np.unique(np.concatenate(codes), return_inverse=True)
    return every, np.bincount(where, weights=np.concatenate(tallies)).astype(np.int64)


def _batches(
    features: Features, pictures: int, flip: bool = False
) -> Iterator[tuple[int, np.ndarray]]:
    """(first position, RootSIFT descriptors) of PICTURE_BATCH pictures at a time, those of
    the pictures flipped left to right when `flip`."""
    for start in range(0, pictures, PICTURE_BATCH):
        found = [features(p) for p in range(start, min(pictures, start + PICTURE_BATCH))]
        if flip:
            found = [None if f is None else mirrored(f) for f in found]
        parts = [f.descriptors for f in found if f is not None and len(f.descriptors)]
        if parts:
            yield start, root_sift(np.concatenate(parts))


def _trained_index(features: Features, counts: np.ndarray) -> faiss.Index:
    """An empty index for the descriptors: exact below EXACT_BELOW of them, else an inverted
    file of product-quantized codes scanned fast, its lists and codes trained on a sample of
    pictures."""
    total = int(counts.sum())
    if total < EXACT_BELOW:
        return faiss.IndexFlatL2(128)
    cells = int(np.clip(total // DESCRIPTORS_PER_CELL, 1, MAX_CELLS))
    wanted = max(cells * TRAINING_PER_CELL, CODE_TRAINING)
    rng = np.random.default_rng(SEED)
    sample, taken = [], 0
    for position in rng.permutation(len(counts)).tolist():
        if taken >= wanted:
            break
        found = features(position) if counts[position] else None
        if found is not None:
            sample.append(found.descriptors)
            taken += len(found.descriptors)
    index = faiss.IndexIVFPQFastScan(
        faiss.IndexFlatL2(128), 128, cells, CODE_BYTES * 8 // CODE_BITS, CODE_BITS
    )
    index.cp.seed = SEED
    index.pq.cp.seed = SEED
    index.train(root_sift(np.concatenate(sample)))
    index.nprobe = min(PROBES, cells)
    return index


def _votes(
    owner: np.ndarray,
    looked_up: np.ndarray,
    distances: np.ndarray,
    nearest: np.ndarray,
    pictures: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One batch's (pair codes, votes): a pair's code is smaller * pictures + larger."""
    found = nearest >= 0
    others = np.where(found, owner[np.maximum(nearest, 0)], -1)
    voting = found & (distances < VOTE_DISTANCE) & (others != looked_up[:, None])
    rows, columns = np.nonzero(voting)
    # One vote per looked-up descriptor and other picture.
    per_descriptor = np.unique(rows.astype(np.int64) * pictures + others[rows, columns])
    first = looked_up[per_descriptor // pictures]
    second = per_descriptor % pictures
    codes = np.minimum(first, second) * pictures + np.maximum(first, second)
    return np.unique(codes, return_counts=True)


def _best_partners(
    codes: np.ndarray, votes: np.ndarray, pictures: int, partners: int, min_votes: int
) -> dict[tuple[int, int], int]:
    """The pairs among either picture's `partners` most voted with at least `min_votes`."""
    enough = votes >= min_votes
    codes, votes = codes[enough], votes[enough]
    first, second = codes // pictures, codes % pictures
    ends = np.concatenate([first, second])
    # Each picture's pairs together, the most voted first; a pair's rank within its picture.
    order = np.lexsort((-np.concatenate([votes, votes]), ends))
    sorted_ends = ends[order]
    rank = np.arange(len(order)) - np.searchsorted(sorted_ends, sorted_ends, side="left")
    kept = np.unique(order[rank < partners] % len(codes))
    return {(int(first[k]), int(second[k])): int(votes[k]) for k in kept.tolist()}
