"""Pairs on which too few features agree, confirmed by the model: the part of one picture that the
match lays under the other, embedded and scored against the other's vector, as searches confirm
their weak hits (ris/search/region_vectors.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from ris.duplicates.pasted_candidates import Embed
from ris.search.region_vectors import REGION_COVER, png_bytes, region_under
from ris.search.same_picture import reversed_match
from ris.search.verify import Match

# The part must score at least this against the other picture's vector, this much more than the
# two whole pictures score, and no less than the other picture's nearest row: the model finds
# the part nearer than any whole picture in the collection. Stricter than searches' 0.6 (a
# wrong pair joins two groups, every pair across them wrong). Chosen on augly, augly2 and
# copydetect (a one-off over the weak pairs the pixel check left apart): 28 hard copies
# joined and 1 wrong pair, two Tux Paint vehicles on white (docs/BENCHMARKS.md, "Weak pairs
# confirmed by their part's vector").
REGION_SCORE = 0.65
OVER_WHOLE = 0.05
# Parts embedded in one call.
EMBED_BATCH = 64

Pair = tuple[int, int]


@dataclass(frozen=True)
class RegionCheck:
    """What confirming a pair by its part takes: the rows' vectors, each row's nearest row's
    score, and the model."""

    vectors: Callable[[list[int]], Mapping[int, np.ndarray]]
    nearest: Mapping[int, float]
    embed: Embed


@dataclass(frozen=True)
class Part:
    """The part of a pair's second picture laid under its `first`, as PNG bytes."""

    pair: Pair
    first: int
    picture: bytes


def parts_under(
    pair: Pair,
    found: Match,
    grey: Callable[[int], np.ndarray | None],
    colour: Callable[[int], np.ndarray | None],
) -> list[Part]:
    """Each picture of the pair with the other laid under it by the match (found: the first's
    points onto the second's), where that covers REGION_COVER of it: a crop lies inside its
    original, so at most one way round covers it unless both are whole."""
    parts = []
    for first, second, match in ((*pair, found), (*pair[::-1], reversed_match(found))):
        shape, pixels = grey(first), colour(second)
        if shape is None or pixels is None:
            continue
        region, cover = region_under(shape.shape, pixels, match)
        if cover >= REGION_COVER:
            parts.append(Part(pair, first, png_bytes(region)))
    return parts


def confirmed_by_parts(
    parts: list[Part],
    check: RegionCheck,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> set[Pair]:
    """The pairs one of whose `parts` scores REGION_SCORE against its first picture's vector,
    OVER_WHOLE more than the pair's whole pictures score, and no less than that picture's
    nearest row; progress reported a batch at a time."""
    vectors = check.vectors(sorted({row for part in parts for row in part.pair}))
    known = [part for part in parts if set(part.pair) <= vectors.keys()]
    confirmed: set[Pair] = set()
    done = 0
    on_progress(done, len(known))
    for batch, embedded in _embedded(known, check.embed):
        for part, vector in zip(batch, embedded, strict=True):
            first, second = part.pair if part.first == part.pair[0] else part.pair[::-1]
            score = float(vector @ vectors[first])
            whole = float(vectors[first] @ vectors[second])
            if score >= max(REGION_SCORE, whole + OVER_WHOLE, check.nearest.get(first, 1.0)):
                confirmed.add(part.pair)
        done += len(batch)
        on_progress(done, len(known))
    return confirmed


def _embedded(parts: list[Part], embed: Embed) -> Iterator[tuple[list[Part], np.ndarray]]:
    """The parts a batch at a time, with their vectors (PNG pictures always decode)."""
    for start in range(0, len(parts), EMBED_BATCH):
        batch = parts[start : start + EMBED_BATCH]
        yield batch, embed([part.picture for part in batch])
