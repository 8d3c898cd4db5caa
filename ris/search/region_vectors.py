"""Hits on which few features agree, confirmed by the model: the part of the hit that the match
lays under the query, embedded and scored against the query's own vector."""

from __future__ import annotations

import cv2
import numpy as np

from ris.search.same_picture import point_map
from ris.search.verify import Match

# The region must score at least this against the query's vector, and at least what the nearest
# whole hit scores (the model finds the part nearer the query than any whole picture). Chosen on
# augly-hard and copydetect-hard (a one-off over exact search, the hits on which 4-9 features
# agree in searches that verified nothing): a wrong hit's region is a chance alignment, and on
# augly-hard 41 of 60 right hits' regions scored 0.6 or more against 21 of 923 wrong ones. The
# nearest whole hit's score was added after one right first hit of augly3-mild and one of
# augly5-mild were displaced by a hit scoring only its own (docs/BENCHMARKS.md, "Hits put first
# by their region's vector").
REGION_SCORE = 0.6
# The region must cover this much of the query: a crop lies inside its original.
REGION_COVER = 0.8
# Weak hits whose regions are embedded at most, in order (one batch).
REGION_COMPARED = 5


def region_under(shape: tuple[int, int], hit: np.ndarray, found: Match) -> tuple[np.ndarray, float]:
    """The hit (colour, in the pixels its features were found at) laid under a query picture of
    `shape` (height, width) by `found`, the query's points onto the hit's; and the share of the
    query it covers."""
    height, width = shape
    onto_hit = point_map(found)
    warp = cv2.WARP_INVERSE_MAP
    region = cv2.warpAffine(hit, onto_hit, (width, height), flags=warp | cv2.INTER_LINEAR)
    inside = cv2.warpAffine(
        np.ones(hit.shape[:2], np.uint8), onto_hit, (width, height), flags=warp | cv2.INTER_NEAREST
    )
    return region, float(inside.mean())


def png_bytes(rgb: np.ndarray) -> bytes:
    """An RGB picture as PNG bytes, as the embedding pipeline takes pictures."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("cannot encode a region as PNG")
    return encoded.tobytes()
