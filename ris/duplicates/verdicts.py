"""Which candidate pairs are duplicates: matched by local features that do not recur across many
pictures, or else one picture pixel for pixel; pairs sharing many local features checked too."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Set
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple, TypeVar

import numpy as np
from threadpoolctl import threadpool_limits

from ris.duplicates.candidates import IDENTICAL_SCORE, Progress
from ris.duplicates.feature_votes import voted_pairs
from ris.duplicates.pasted_detail import with_pasted_detail
from ris.duplicates.recurring import (
    DISTINCTIVE_SHARE,
    aligned_in_place,
    distinctive_inliers,
    frame_features,
    needs_same_picture,
    own_points,
    recurring_features,
)
from ris.duplicates.region_pairs import RegionCheck, confirmed_by_parts, parts_under
from ris.duplicates.reshaped_pairs import Reshaped, aspect_step, reshaped_features, shapes_differ
from ris.duplicates.stores import FeatureStore, PastedCache, RecentPictures
from ris.duplicates.union_find import UnionFind
from ris.files.changes import FileState
from ris.search.feature_cache import FeatureCache
from ris.search.same_picture import APART, WEAK_INLIERS, Comparison, cell_centres, compared
from ris.search.verify import MIN_INLIERS, LocalFeatures, Match, Pictures, match

# Pairs checked together by the verification threads, between two progress reports.
VERIFY_CHUNK = 64

T = TypeVar("T")
Item = TypeVar("Item")


class Verdicts(NamedTuple):
    """What verification made of the candidate pairs."""

    joined: UnionFind
    shared: int  # pairs only their shared local features proposed, added to the candidates
    checked: int  # by local features
    accepted: int
    compared: int  # pixel by pixel, being held by recurring features
    weak: int  # pixel by pixel, too few features agreeing
    by_region: int  # of those, left apart by pixels and confirmed by a part's vector
    reshaped: int  # pairs still apart matched with one picture stretched to the other's shape
    framed: int  # pictures holding a pasted picture
    read: int  # pictures whose local features were extracted
    cached: int  # pictures whose local features were kept from an earlier run


def _in_checking_order(pairs: dict[tuple[int, int], float]) -> list[tuple[int, int]]:
    """Pairs a connected cluster of candidates at a time, the most similar first within each:
    the pairs of one picture come close together, while its features are fresh in the page
    cache (and its pictures in RecentPictures)."""
    clusters = UnionFind()
    for first, second in pairs:
        clusters.union(first, second)
    return sorted(pairs, key=lambda pair: (clusters.find(pair[0]), -pairs[pair]))


class _Checks:
    """What every check of a pair shares: each picture's features, grey pixels and pasted
    pictures, read once, and the threads the checks run on."""

    def __init__(
        self,
        pictures: Pictures,
        paths: dict[int, str],
        store: FeatureStore,
        pool: ThreadPoolExecutor,
        on_progress: Progress,
    ):
        self.paths = paths
        self.store = store
        self.pool = pool
        self.on_progress = on_progress
        self.pictures = pictures
        self.greys = RecentPictures(pictures.grey, paths)
        self.colours = RecentPictures(pictures.colour, paths)
        self.pasted = PastedCache(pictures, paths)
        self.shape = functools.cache(self._shape)
        self.pixels = functools.cache(self._pixels)
        # A picture reshaped to one aspect ratio serves its other partners of that shape.
        self.reshaped = functools.lru_cache(maxsize=256)(self._reshaped)

    def features(self, row: int) -> LocalFeatures | None:
        return self.store.get(row, self.paths[row])

    def match(self, pair: tuple[int, int], at_least: int = WEAK_INLIERS) -> Match | None:
        """The first picture's features agreeing with the second's by `at_least` or more."""
        first = self.features(pair[0])
        second = self.features(pair[1]) if first is not None else None
        if first is None or second is None:
            return None
        agreeing = match(first, second, at_least, stretch=True)
        return agreeing if agreeing is not None and agreeing.inliers >= at_least else None

    def matches(
        self, pairs: list[tuple[int, int]], stage: str, at_least: int = WEAK_INLIERS
    ) -> dict[tuple[int, int], Match]:
        """The pairs that match by `at_least` features, with their match."""
        found = self.on_threads(lambda pair: self.match(pair, at_least), pairs, stage)
        return {pair: agreeing for pair, agreeing in zip(pairs, found, strict=True) if agreeing}

    def comparison(
        self,
        pair: tuple[int, int],
        agreeing: Match,
        recurring: Mapping[int, set[int]],
        detail: bool = False,
    ) -> Comparison:
        """The pair compared pixel for pixel, aligned by `agreeing`, the first picture's own
        features and the pictures pasted in it its content; with `detail`, the pictures pasted
        in either too small to count read larger too (pasted_detail.py)."""
        first, second = self.greys.get(pair[0]), self.greys.get(pair[1])
        features = self.features(pair[0])
        if first is None or second is None or features is None:
            return APART
        own = own_points(features, recurring.get(pair[0], set()), agreeing)
        boxes = self.pasted.get(pair[0]) or []
        content = np.concatenate([own, cell_centres(boxes)])
        comparison = compared(first, second, agreeing, content)
        # Only a pair the pixel check passes is looked at again: the second picture's pasted
        # pictures are then found too.
        if not detail or not comparison.same_picture:
            return comparison
        return with_pasted_detail(
            comparison,
            self.pictures,
            (self.paths[pair[0]], self.paths[pair[1]]),
            (first, second),
            agreeing,
            (boxes, self.pasted.get(pair[1]) or []),
        )

    def confirms_weak_match(
        self, pair: tuple[int, int], agreeing: Match, recurring: Mapping[int, set[int]]
    ) -> bool:
        """One picture pixel for pixel as matched, or else matched the other way round:
        matching is not symmetric, and the way round decides which picture is warped."""
        if self.comparison(pair, agreeing, recurring).confirms_weak_match:
            return True
        reverse = (pair[1], pair[0])
        backwards = self.match(reverse)
        return (
            backwards is not None
            and self.comparison(reverse, backwards, recurring).confirms_weak_match
        )

    def by_region(
        self,
        pairs: list[tuple[int, int]],
        found: Mapping[tuple[int, int], Match],
        regions: RegionCheck,
        joined: UnionFind,
    ) -> list[tuple[int, int]]:
        """The `pairs` still apart in `joined` that the part one picture lays under the other
        confirms (region_pairs.py), in their order."""
        apart = [pair for pair in pairs if joined.find(pair[0]) != joined.find(pair[1])]
        parts = self.on_threads(
            lambda pair: parts_under(pair, found[pair], self.greys.get, self.colours.get),
            apart,
            "reading parts of weak pairs",
        )
        confirmed = confirmed_by_parts(
            [part for each in parts for part in each],
            regions,
            lambda done, total: self.on_progress("embedding parts", done, total),
        )
        return [pair for pair in apart if pair in confirmed]

    def by_shape(
        self,
        pairs: list[tuple[int, int]],
        joined: UnionFind,
        recurring: Mapping[int, set[int]],
    ) -> list[tuple[int, int]]:
        """The `pairs` still apart in `joined` whose pictures differ in shape and that match
        once the one of fewer pixels is stretched to the other's shape (reshaped_pairs.py), in
        their order."""
        apart = [pair for pair in pairs if joined.find(pair[0]) != joined.find(pair[1])]
        matched = self.on_threads(
            lambda pair: self.match_reshaped(pair, recurring), apart, "matching reshaped pairs"
        )
        return [pair for pair, found in zip(apart, matched, strict=True) if found]

    def match_reshaped(self, pair: tuple[int, int], recurring: Mapping[int, set[int]]) -> bool:
        """Whether the pair's pictures differ in shape and, the one of fewer pixels stretched to
        the other's shape, match under a similarity by MIN_INLIERS features, a quarter of them
        distinctive: on neither picture's frame around a pasted picture (the page of a
        screenshot, which another screenshot of the template squeezed matches) nor recurring
        on the other; aligned in place, they must be one picture pixel for pixel too."""
        first, second = self.shape(pair[0]), self.shape(pair[1])
        if first is None or second is None or not shapes_differ(first, second):
            return False
        if self.pixels(pair[0]) > self.pixels(pair[1]):
            pair, second = (pair[1], pair[0]), first
        stretched = self.reshaped(pair[0], aspect_step(second))
        other = self.features(pair[1])
        if stretched is None or other is None:
            return False
        found = match(stretched.features, other, MIN_INLIERS)
        if found is None or found.inliers < MIN_INLIERS:
            return False
        held = {
            pair[0]: frame_features(stretched.in_own_pixels(), self.pasted.get(pair[0]) or []),
            pair[1]: recurring.get(pair[1], set())
            | frame_features(other, self.pasted.get(pair[1]) or []),
        }
        if distinctive_inliers(pair, found, held) < max(
            MIN_INLIERS, DISTINCTIVE_SHARE * found.inliers
        ):
            return False
        if not aligned_in_place(found):
            return True
        # Two screenshots of one template, one squeezed, align in place by the page once
        # stretched back, as they do unstretched: one picture pixel for pixel, or no copy.
        grey = self.greys.get(pair[1])
        return grey is not None and compared(stretched.grey, grey, found).same_picture_both_ways

    def _shape(self, row: int) -> tuple[int, int] | None:
        grey = self.greys.get(row)
        return None if grey is None else (grey.shape[0], grey.shape[1])

    def _pixels(self, row: int) -> int:
        size = self.pictures.size(self.paths[row])
        return 0 if size is None else size[0] * size[1]

    def _reshaped(self, row: int, step: int) -> Reshaped | None:
        grey = self.greys.get(row)
        if grey is None:
            return None
        settings = self.pictures
        return reshaped_features(
            grey, step, settings.max_side, settings.max_features, settings.few_features
        )

    def frames(self, rows: list[int]) -> dict[int, set[int]]:
        """The frame features (recurring.frame_features) of the rows holding a pasted
        picture."""

        def frame(row: int) -> set[int]:
            boxes = self.pasted.get(row)
            features = self.features(row) if boxes else None
            return set() if features is None or boxes is None else frame_features(features, boxes)

        frames = self.on_threads(frame, rows, "finding pasted pictures")
        return {row: found for row, found in zip(rows, frames, strict=True) if found}

    def on_threads(self, function: Callable[[Item], T], items: list[Item], stage: str) -> list[T]:
        """`function` of every item on the pool's threads, progress reported a chunk at a
        time."""
        results: list[T] = []
        if items:
            self.on_progress(stage, 0, len(items))
        for start in range(0, len(items), VERIFY_CHUNK):
            results += self.pool.map(function, items[start : start + VERIFY_CHUNK])
            self.on_progress(stage, len(results), len(items))
        return results


def accepted_pairs(
    pairs: dict[tuple[int, int], float],
    paths: dict[int, str],
    pictures: Pictures | None,
    threads: int = 2,
    on_progress: Progress = lambda stage, done, total: None,
    cache: FeatureCache | None = None,
    states: Mapping[int, FileState] | None = None,
    crowds: Mapping[int, list[int]] | None = None,
    shared_features: bool = False,
    cut: Set[int] = frozenset(),
    regions: RegionCheck | None = None,
    reshape: bool = False,
) -> Verdicts:
    """The images joined, and how many pairs were checked, accepted and compared. Without
    `pictures` every pair is accepted; with it, every pair below IDENTICAL_SCORE must match
    under one geometry, by features that do not recur across many pictures or, failing that,
    as one picture pixel for pixel whichever picture's grey levels are mapped onto the other's
    (ris/duplicates/recurring.py); a pair too few features agree on (WEAK_INLIERS to
    MIN_INLIERS) must be one picture pixel for pixel, matched either way round, the overlap
    covering most of the smaller (ris/search/same_picture.py). Pixel
    comparisons hold the first picture to its content: its own features' cells and those of
    the pictures pasted in it. Features recur across the matched pairs and, for the pictures
    of pairs nothing else holds, across their `crowds` (CROWD_MIN_SCORE). Features are taken
    from the `cache` where it holds the row as `states` says it was indexed, and kept there.
    With `shared_features`, the pairs of `paths` sharing many local features are candidates
    too, checked in the same way, except that such a pair no vector proposed is refused where
    it would be compared pixel for pixel for being held. The rows of `cut` are pictures cut out
    of others (ris/duplicates/pasted_candidates.py): they share no features' votes, and a pair
    of one must verify by features of its own, outside the other picture's frame where that
    holds pasted pictures too, or by pixels only with a picture that holds none. Given `regions`,
    a pair the pixels leave apart (but a cut's) is joined when the part of one picture that the
    match lays under the other scores as a copy of it to the model (region_pairs.py). With
    `reshape`, a pair the vectors proposed still apart (but a cut's) whose pictures differ in
    shape is matched again with one stretched to the other's shape (reshaped_pairs.py)."""
    joined = UnionFind()
    if pictures is None:
        for pair in pairs:
            joined.union(*pair)
        return Verdicts(joined, 0, 0, len(pairs), 0, 0, 0, 0, 0, 0, 0)
    identical = [pair for pair, score in pairs.items() if score >= IDENTICAL_SCORE]
    for pair in identical:
        joined.union(*pair)
    with (
        FeatureStore(pictures, cache, states) as store,
        ThreadPoolExecutor(max(1, threads), thread_name_prefix="verify") as pool,
        # Each match's small matrix product on BLAS threads of its own made the verification
        # threads wait on one another: 1.17 ms a pair on 2 threads against 0.80 ms limited
        # (python -m bench.matching), and SIFT extraction on the same threads slowed too.
        threadpool_limits(1, user_api="blas"),
    ):
        checks = _Checks(pictures, paths, store, pool, on_progress)
        shared = _shared_feature_pairs(checks, threads, cut) if shared_features else {}
        proposed = shared.keys() - pairs.keys()  # by shared features alone
        pairs = {**shared, **pairs}
        order = [pair for pair in _in_checking_order(pairs) if pairs[pair] < IDENTICAL_SCORE]
        found = checks.matches(order, "verifying")
        matches = {
            pair: agreeing for pair, agreeing in found.items() if agreeing.inliers >= MIN_INLIERS
        }
        recurring = _recurring(checks, matches, crowds or {}, pairs.keys())
        # A photo pasted into a page (a screenshot, a frame) is what a copy of it shares with
        # the photo: the page's features count as recurring. Looked for only in the pictures
        # of pairs nothing else holds, and in those a cut-out picture is matched with (a
        # template's part cut out of one page must not pass for a copy of another page).
        unheld = _unheld(matches, recurring)
        of_cuts = [pair for pair in matches if not cut.isdisjoint(pair)]
        framed = checks.frames(sorted({row for pair in [*unheld, *of_cuts] for row in pair} - cut))
        for row, frame in framed.items():
            recurring.setdefault(row, set()).update(frame)
        # A pair only its shared features proposed must verify by features of its own: one
        # that recurring features hold (pages of one template, mirrored or laid out apart) or
        # that aligns in place (which vectors find) is refused, not compared pixel for pixel.
        needing = [
            pair
            for pair, agreeing in matches.items()
            if needs_same_picture(pair, agreeing, recurring)
        ]
        refused = (proposed | set(of_cuts)) & set(needing)  # cut pairs: held is refused too
        held = [pair for pair in needing if pair not in refused]
        same = checks.on_threads(
            lambda pair: (
                checks.comparison(pair, found[pair], recurring, detail=True).same_picture_both_ways
            ),
            held,
            "comparing pixels",
        )
        kept = dict(zip(held, same, strict=True))
        accepted = [pair for pair in matches if kept.get(pair, pair not in refused)]
        for pair in accepted:
            joined.union(*pair)
        # Pairs too few features agree on, unless already one group: one picture pixel for
        # pixel, the overlap covering most of the smaller.
        weak = [
            pair
            for pair, agreeing in found.items()
            if agreeing.inliers < MIN_INLIERS
            and joined.find(pair[0]) != joined.find(pair[1])
            and not _cut_from_a_page(pair, cut, checks)
        ]
        confirmed = checks.on_threads(
            lambda pair: checks.confirms_weak_match(pair, found[pair], recurring),
            weak,
            "comparing smooth pairs",
        )
        smooth = [pair for pair, one in zip(weak, confirmed, strict=True) if one]
        for pair in smooth:
            joined.union(*pair)
        by_region = (
            checks.by_region(
                [pair for pair in weak if cut.isdisjoint(pair)], found, regions, joined
            )
            if regions is not None
            else []
        )
        for pair in by_region:
            joined.union(*pair)
        # Only pairs the vectors proposed: on augly and augly2 those proposed by shared features
        # alone were half the pairs of different shapes and gave one join of 37.
        reshaped = (
            checks.by_shape(
                [pair for pair in order if cut.isdisjoint(pair) and pair not in proposed],
                joined,
                recurring,
            )
            if reshape
            else []
        )
    for pair in reshaped:
        joined.union(*pair)
    return Verdicts(
        joined,
        len(proposed),
        len(order),
        len(identical) + len(accepted) + len(smooth) + len(by_region) + len(reshaped),
        len(held),
        len(weak),
        len(by_region),
        len(reshaped),
        len(framed),
        store.extracted,
        store.cached,
    )


def _cut_from_a_page(pair: tuple[int, int], cut: Set[int], checks: _Checks) -> bool:
    """True when one of the pair is a picture cut out of another and the other holds pasted
    pictures itself: a page, whose frame a template's part cut out of a page would match."""
    return not cut.isdisjoint(pair) and any(checks.pasted.get(row) for row in set(pair) - cut)


def _shared_feature_pairs(
    checks: _Checks, threads: int, left_out: Set[int]
) -> dict[tuple[int, int], float]:
    """The pairs of rows (but those `left_out`) sharing many local features
    (ris/duplicates/feature_votes.py), with no vector score (0): every row's features are read
    first, on the pool's threads."""
    rows = sorted(checks.paths.keys() - left_out)
    checks.on_threads(checks.features, rows, "reading features")
    # faiss's matrix products are BLAS calls: this stage runs alone, so on every thread.
    with threadpool_limits(max(1, threads), user_api="blas"):
        found = voted_pairs(
            lambda position: checks.features(rows[position]),
            len(rows),
            on_progress=checks.on_progress,
        )
    return {(rows[first], rows[second]): 0.0 for first, second in found}


def _recurring(
    checks: _Checks,
    matches: Mapping[tuple[int, int], Match],
    crowds: Mapping[int, list[int]],
    candidates: Set[tuple[int, int]],
) -> dict[int, set[int]]:
    """Each picture's features recurring across the `matches` and, for the pictures of pairs
    they do not hold, across the matches with the rows of their crowd that were no
    `candidates` with them."""
    recurring = recurring_features(matches)
    if not crowds:
        return recurring
    crowd = _crowd_pairs(_unheld(matches, recurring), crowds, candidates)
    # Only verified matches count here: pairs short of MIN_INLIERS ratio matches stop before
    # RANSAC.
    crowd_matches = checks.matches(crowd, "matching crowds", MIN_INLIERS)
    return recurring_features({**matches, **crowd_matches})


def _unheld(
    matches: Mapping[tuple[int, int], Match], recurring: Mapping[int, set[int]]
) -> list[tuple[int, int]]:
    """The matched pairs held by neither recurring features nor their alignment."""
    return [
        pair for pair, found in matches.items() if not needs_same_picture(pair, found, recurring)
    ]


def _crowd_pairs(
    unheld: list[tuple[int, int]],
    crowds: Mapping[int, list[int]],
    candidates: Set[tuple[int, int]],
) -> list[tuple[int, int]]:
    """Each picture of the `unheld` pairs with each row of its crowd it was no candidate with."""
    rows = {row for pair in unheld for row in pair}
    return sorted(
        {(min(row, other), max(row, other)) for row in rows for other in crowds.get(row, ())}
        - candidates
    )
