"""Duplicate groups: every set of near-duplicate images in a collection, and what finding them
took: candidate pairs (ris/duplicates/candidates.py) checked (verdicts.py) and joined."""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ris.duplicates.candidates import NEIGHBOURS, Candidates, Progress, candidate_pairs
from ris.duplicates.pasted_candidates import Embed, PastedPictures, pasted_candidates
from ris.duplicates.region_pairs import RegionCheck
from ris.duplicates.verdicts import accepted_pairs
from ris.files.remote import Remote
from ris.index.base import VectorIndex
from ris.search.feature_cache import FeatureCache, open_feature_cache
from ris.search.verify import Pictures
from ris.settings import Settings

# Candidates at least this similar. With verification, 0.55 kept 99.5% of the mild and 96.7%
# of the hard true pairs of the copy-detection development sets (their nearest wrong pairs,
# neighbouring tiles of one wallpaper, scored up to 0.989, so no score alone proves a copy).
VERIFIED_MIN_SCORE = 0.55
# With verification, a pair is checked only when it stands out from both rows' neighbourhoods:
# its score at least this much above the mean of the two rows' NEIGHBOURS-th nearest scores.
# In a crowd of similar pictures (a burst, tiles of one texture) every neighbour scores high
# and few pairs stand out; a copy usually does. On the development sets a margin of 0 kept 96.8%
# of the hard and 99.8% of the mild true pairs, and half of the wrong ones.
VERIFIED_MARGIN = 0.0
# Without verification the score alone decides: a pair this similar is taken as a copy.
UNVERIFIED_MIN_SCORE = 0.9
# Pictures are matched at most this many pixels on a side, by at most this many features
# (searches use 320 and 1000): a pair costs about half as much to check, and on the
# development sets as many hard-copy pairs verified (0.867 of them against 0.869).
FEATURE_SIDE = 256
FEATURE_COUNT = 500
# A picture with fewer features than this keeps those of verify.LOW_CONTRAST too: a smooth
# wallpaper, a flat drawing or a blurred copy gave too few to verify. Chosen on augly and the
# copy-detection sets among 50-300 (docs/BENCHMARKS.md, "Smooth pictures").
FEATURE_FEW = 100

# Collections of at most this many rows (when verifying) also take as candidates the pairs
# sharing many local features (ris/duplicates/feature_votes.py), which finds the originals of small
# crops whose vectors are not among each other's nearest. All pictures are read first, and the
# descriptor index's cost grows faster than the rows (docs/BENCHMARKS.md, "Candidates by shared
# features"); larger collections take it when asked.
SHARED_FEATURES_MAX_ROWS = 10_000


@dataclass(frozen=True)
class DuplicateImage:
    """One image of a group: its similarity to the group's first image, and its size."""

    id: int
    path: str
    score: float
    width: int | None
    height: int | None


@dataclass
class DuplicateGroup:
    """Near-duplicate images, the one to keep first (most pixels, then largest file)."""

    group: int
    images: list[DuplicateImage]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DuplicateReport:
    """The groups found and what it took: pairs at each step, seconds per phase."""

    rows: int
    min_score: float
    verify: bool
    # Pairs of rows among each other's nearest at or above min_score.
    candidate_pairs: int
    # Candidate pairs that only the local features they share proposed, not their vectors (0
    # when not looked for); counted in candidate_pairs too.
    shared_feature_pairs: int
    # Pairs checked by local features (the others were identical, or already joined).
    verified_pairs: int
    # Pairs taken as duplicates.
    accepted_pairs: int
    # Verified pairs held only by features recurring across many pictures (or by the frames of
    # pictures pasted into them), compared pixel by pixel (kept when one picture).
    compared_pairs: int
    # Pairs on which too few features agreed to verify them (a smooth wallpaper, a flat
    # drawing), compared pixel by pixel (kept when one picture).
    weak_pairs: int
    # Of those, pairs the pixels left apart that the model took for a copy and its original by
    # the part of one that the match lays under the other (0 when not looked for).
    region_pairs: int
    # Pairs otherwise left apart that matched once the picture of fewer pixels was stretched to
    # the other's aspect ratio (0 when not looked for).
    reshaped_pairs: int
    # Pictures of verified pairs found holding a pasted picture, whose frames' features counted
    # as recurring.
    framed_pictures: int
    # Pictures pasted in rows (a screenshot's photo), cut out and checked as pictures of their
    # own (0 when not looked for).
    pasted_pictures: int
    # Pictures whose local features were extracted, each once however many pairs it is in.
    read_pictures: int
    # Pictures whose local features were kept from an earlier run (not read this time).
    cached_pictures: int
    groups: list[DuplicateGroup]
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _groups(
    index: VectorIndex, sets: list[list[int]], found: Candidates, pictures: Pictures
) -> list[DuplicateGroup]:
    """Each set as a group: the image with the most pixels (then the largest file, then the
    shortest path) first, every image scored against it; the largest groups first. Paths and
    file states come from the rows read for the candidates; only rows not read are asked for."""
    members = [row_id for items in sets for row_id in items]
    missing = [row_id for row_id in members if row_id not in found.paths]
    paths = {**found.paths, **index.get_paths(missing)}
    vectors = index.get_vectors(members)
    unknown = [row_id for row_id in members if row_id not in found.states]
    states = {**found.states, **index.get_file_states(unknown)}
    sizes = {row_id: pictures.size(paths[row_id]) for row_id in members}

    def keep_first(row_id: int) -> tuple[int, int, int, str]:
        width, height = sizes[row_id] or (0, 0)
        file_size = states[row_id].size if row_id in states else 0
        return (-width * height, -file_size, len(paths[row_id]), paths[row_id])

    groups = []
    for items in sets:
        ordered = sorted(items, key=keep_first)
        kept = vectors[ordered[0]]
        images = [
            DuplicateImage(
                row_id,
                paths[row_id],
                round(float(vectors[row_id] @ kept), 4),
                *(sizes[row_id] or (None, None)),
            )
            for row_id in ordered
        ]
        groups.append(images)
    groups.sort(key=lambda images: (-len(images), images[0].path))
    return [DuplicateGroup(number, images) for number, images in enumerate(groups, start=1)]


def open_duplicates_cache(settings: Settings) -> FeatureCache | None:
    """The cache of the features duplicate groups are checked by (open_feature_cache)."""
    return open_feature_cache(settings, FEATURE_SIDE, FEATURE_COUNT, FEATURE_FEW)


def find_duplicates(
    index: VectorIndex,
    remote: Remote,
    max_pixels: int,
    min_score: float | None = None,
    verify: bool = True,
    under: str = "",
    threads: int = 2,
    on_progress: Progress = lambda stage, done, total: None,
    cache: FeatureCache | None = None,
    shared_features: bool | None = None,
    embed: Embed | None = None,
) -> DuplicateReport:
    """Every group of near-duplicate images among the rows under `under` (all when empty).

    `min_score` defaults to VERIFIED_MIN_SCORE with verification, UNVERIFIED_MIN_SCORE without.
    Pictures' local features are kept in the `cache` (when given) for the next run. With
    verification, pairs sharing many local features are candidates too when `shared_features`
    says so, by default in collections of at most SHARED_FEATURES_MAX_ROWS rows; then, given
    `embed` (the model's vectors of pictures as bytes), the pictures pasted in the rows are cut
    out and checked too (ris/duplicates/pasted_candidates.py), and a row joins what they join;
    and pairs on which too few features agree are also confirmed by the model's vector of the
    part one picture lays under the other (ris/duplicates/region_pairs.py). Pairs still apart
    whose pictures differ in shape are matched again with one stretched to the other's shape
    where shared features are looked for (ris/duplicates/reshaped_pairs.py).
    """
    if min_score is None:
        min_score = VERIFIED_MIN_SCORE if verify else UNVERIFIED_MIN_SCORE
    pictures = Pictures(remote, max_pixels, FEATURE_SIDE, FEATURE_COUNT, FEATURE_FEW)
    started = time.perf_counter()
    margin = VERIFIED_MARGIN if verify else None
    found = candidate_pairs(index, min_score, under, NEIGHBOURS, margin, on_progress)
    searched = time.perf_counter()
    if shared_features is None:
        shared_features = found.rows <= SHARED_FEATURES_MAX_ROWS
    with tempfile.TemporaryDirectory(prefix="ris-pasted-") as folder:
        pasted = (
            pasted_candidates(
                found.paths,
                found.states,
                pictures,
                max_pixels,
                embed,
                index,
                Path(folder),
                under,
                threads,
                on_progress,
            )
            if verify and shared_features and embed is not None
            else PastedPictures.none()
        )
        verdicts = accepted_pairs(
            {**found.pairs, **pasted.pairs},
            {**found.paths, **pasted.paths},
            pictures if verify else None,
            threads,
            on_progress,
            cache,
            {**found.states, **pasted.states},
            found.crowds,
            shared_features,
            pasted.pages.keys(),
            (
                RegionCheck(index.get_vectors, found.nearest, embed)
                if verify and shared_features and embed is not None
                else None
            ),
            reshape=verify and shared_features,
        )
    verified = time.perf_counter()
    # A picture pasted in a row is part of it: a row joins what its pasted pictures joined.
    for cut_id, row in pasted.pages.items():
        verdicts.joined.union(row, cut_id)
    sets = [[row for row in items if row not in pasted.pages] for items in verdicts.joined.sets()]
    groups = _groups(index, [items for items in sets if len(items) > 1], found, pictures)
    finished = time.perf_counter()
    return DuplicateReport(
        rows=found.rows,
        min_score=min_score,
        verify=verify,
        candidate_pairs=len(found.pairs) + verdicts.shared,
        shared_feature_pairs=verdicts.shared,
        verified_pairs=verdicts.checked,
        accepted_pairs=verdicts.accepted,
        compared_pairs=verdicts.compared,
        weak_pairs=verdicts.weak,
        region_pairs=verdicts.by_region,
        reshaped_pairs=verdicts.reshaped,
        framed_pictures=verdicts.framed,
        pasted_pictures=len(pasted.pages),
        read_pictures=verdicts.read,
        cached_pictures=verdicts.cached,
        groups=groups,
        seconds={
            "search": round(searched - started, 2),
            "verify": round(verified - searched, 2),
            "group": round(finished - verified, 2),
            "total": round(finished - started, 2),
        },
    )
