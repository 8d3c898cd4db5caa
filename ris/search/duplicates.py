"""Duplicate groups: every set of near-duplicate images in a collection, found among each row's
nearest rows (blocked matrix products over the collection's own vectors, or batched index
searches), pairs checked by local features, joined by union-find. No n x n matrix is ever held:
each block of rows keeps only its nearest."""

from __future__ import annotations

import functools
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Set
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from threading import Lock
from typing import Any, NamedTuple, TypeVar

import numpy as np
from threadpoolctl import threadpool_limits

from ris.files.changes import FileState
from ris.files.remote import Remote
from ris.index.base import RowFilter, RowPage, VectorIndex
from ris.search.feature_cache import (
    FEATURE_BYTES,
    FeatureCache,
    KeptFeatures,
    features_bytes,
    features_from_bytes,
    open_feature_cache,
)
from ris.search.feature_votes import voted_pairs
from ris.search.neighbours import nearest_rows
from ris.search.pasted_pictures import Box
from ris.search.recurring import (
    frame_features,
    needs_same_picture,
    own_points,
    recurring_features,
)
from ris.search.same_picture import APART, WEAK_INLIERS, Comparison, cell_centres, compared
from ris.search.verify import MIN_INLIERS, LocalFeatures, Match, Pictures, match
from ris.settings import Settings

# Nearest rows each row is compared with. A group larger than this still comes out whole: its
# members link to one another in chains, and union-find joins the chains.
NEIGHBOURS = 10
# Collections whose vectors take at most this many bytes (100,000 rows of the default 2,560-d
# model are 1 GB) find each row's nearest in this process, by matrix products over the vectors
# read once (ris/search/neighbours.py): exact scores, the same neighbours for 99.6-99.8% of rows,
# and far faster than one index search per row on Milvus Lite's brute force. Larger ones ask the
# index in batches, where a server's ANN index keeps the cost growing with n log n, not n^2.
IN_PROCESS_BYTES = 2 * 1024**3
# Rows searched in one index request.
SEARCH_BATCH = 256
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
# Vectors this close are one picture (the same file, or it re-encoded at the same size); the
# closest pair of different pictures on the development sets scored 0.989.
IDENTICAL_SCORE = 0.995
# Pairs checked together by the verification threads, between two progress reports.
VERIFY_CHUNK = 64
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
# sharing many local features (ris/search/feature_votes.py), which finds the originals of small
# crops whose vectors are not among each other's nearest. All pictures are read first, and the
# descriptor index's cost grows faster than the rows (docs/BENCHMARKS.md, "Candidates by shared
# features"); larger collections take it when asked.
SHARED_FEATURES_MAX_ROWS = 10_000

# A picture of a verified pair is also matched with its nearest rows this similar that were no
# candidates with it (they did not stand out of a crowd: screenshots of one app, pages of one
# template), so that features it shares with all of them count as recurring. Chosen on augly:
# 0.7 gave the same groups as every nearest row, with a tenth of the matches (docs/BENCHMARKS.md,
# "Stretched copies, crowds and content").
CROWD_MIN_SCORE = 0.7

Progress = Callable[[str, int, int], None]
T = TypeVar("T")
Item = TypeVar("Item")


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
    # Pictures of verified pairs found holding a pasted picture, whose frames' features counted
    # as recurring.
    framed_pictures: int
    # Pictures whose local features were extracted, each once however many pairs it is in.
    read_pictures: int
    # Pictures whose local features were kept from an earlier run (not read this time).
    cached_pictures: int
    groups: list[DuplicateGroup]
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Verdicts(NamedTuple):
    """What verification made of the candidate pairs."""

    joined: UnionFind
    shared: int  # pairs only their shared local features proposed, added to the candidates
    checked: int  # by local features
    accepted: int
    compared: int  # pixel by pixel, being held by recurring features
    weak: int  # pixel by pixel, too few features agreeing
    framed: int  # pictures holding a pasted picture
    read: int  # pictures whose local features were extracted
    cached: int  # pictures whose local features were kept from an earlier run


class UnionFind:
    """Disjoint sets of ids, with path halving."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, item: int) -> int:
        parent = self.parent.setdefault(item, item)
        while parent != item:
            grandparent = self.parent[parent]
            self.parent[item] = grandparent
            item, parent = parent, self.parent.setdefault(grandparent, grandparent)
        return item

    def union(self, first: int, second: int) -> bool:
        """Join the two sets; False when they were already one."""
        first_root, second_root = self.find(first), self.find(second)
        if first_root == second_root:
            return False
        self.parent[second_root] = first_root
        return True

    def sets(self) -> list[list[int]]:
        """Every set of more than one item."""
        members: dict[int, list[int]] = {}
        for item in self.parent:
            members.setdefault(self.find(item), []).append(item)
        return [items for items in members.values() if len(items) > 1]


class FeatureStore:
    """Local features by row id, each picture's extracted once however many pairs it is in:
    kept in an unnamed scratch file, so memory holds what the page cache can spare rather than
    every picture's features (about 68 KB each as bytes). Pictures whose features the `cache`
    kept from an earlier run (by `states`, the file state the index holds of each row) are not
    read at all, and those extracted are kept there. Thread-safe; a picture asked for while
    another thread extracts it waits for that extraction."""

    def __init__(
        self,
        pictures: Pictures,
        cache: FeatureCache | None = None,
        states: Mapping[int, FileState] | None = None,
    ):
        self.pictures = pictures
        self.states = states or {}
        self._kept = KeptFeatures(pictures, cache)
        self._file = tempfile.TemporaryFile(prefix="ris-features-")
        self._end = 0
        # row id -> (offset, feature count) in the file, or None when it cannot be read.
        self._stored: dict[int, tuple[int, int] | None] = {}
        self._pending: dict[int, Future[LocalFeatures | None]] = {}
        self._lock = Lock()
        self.extracted = 0  # pictures read and their features extracted (or found unreadable)
        self.cached = 0  # pictures whose features came from the cache

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def get(self, row_id: int, path: str) -> LocalFeatures | None:
        with self._lock:
            stored = row_id in self._stored
            where = self._stored.get(row_id)
            waiting = self._pending.get(row_id)
            if not stored and waiting is None:
                self._pending[row_id] = mine = Future[LocalFeatures | None]()
        # Read outside the lock: the other threads' reads and extractions go on meanwhile.
        if stored:
            return self._read(where)
        if waiting is not None:
            return waiting.result()
        try:
            features = self._find(row_id, path)
            where = None if features is None else self._write(features)
        except BaseException as error:
            with self._lock:
                del self._pending[row_id]
            mine.set_exception(error)
            raise
        with self._lock:
            self._stored[row_id] = where
            del self._pending[row_id]
        mine.set_result(features)
        return features

    def _find(self, row_id: int, path: str) -> LocalFeatures | None:
        """The picture's features from the cache, or else extracted (and then cached)."""
        state = self.states.get(row_id)
        features = self._kept.kept(row_id, state)
        if features is not None:
            with self._lock:
                self.cached += 1
            return features
        features = self._kept.extract(row_id, path, state)
        with self._lock:
            self.extracted += 1
        return features

    def _write(self, features: LocalFeatures) -> tuple[int, int]:
        data = features_bytes(features)
        with self._lock:
            offset, self._end = self._end, self._end + len(data)
        os.pwrite(self._file.fileno(), data, offset)
        return offset, len(features.points)

    def _read(self, where: tuple[int, int] | None) -> LocalFeatures | None:
        if where is None:
            return None
        offset, count = where
        return features_from_bytes(os.pread(self._file.fileno(), count * FEATURE_BYTES, offset))


class Candidates(NamedTuple):
    """The pairs worth checking, and what was read of their rows."""

    rows: int  # rows searched
    pairs: dict[tuple[int, int], float]  # (smaller id, larger id): score
    paths: dict[int, str]
    states: dict[int, FileState]  # the file state the index holds of each row read
    crowds: dict[int, list[int]]  # each row's nearest rows scoring at least CROWD_MIN_SCORE


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
    read = Candidates(0, pairs, {}, {}, {})
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


def _in_checking_order(pairs: dict[tuple[int, int], float]) -> list[tuple[int, int]]:
    """Pairs a connected cluster of candidates at a time, the most similar first within each:
    the pairs of one picture come close together, while its features are fresh in the page
    cache (and its grey picture in GreyCache)."""
    clusters = UnionFind()
    for first, second in pairs:
        clusters.union(first, second)
    return sorted(pairs, key=lambda pair: (clusters.find(pair[0]), -pairs[pair]))


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
) -> Verdicts:
    """The images joined, and how many pairs were checked, accepted and compared. Without
    `pictures` every pair is accepted; with it, every pair below IDENTICAL_SCORE must match
    under one geometry, by features that do not recur across many pictures or, failing that,
    as one picture pixel for pixel (ris/search/recurring.py); a pair too few features agree on
    (WEAK_INLIERS to MIN_INLIERS) must be one picture pixel for pixel, matched either way
    round, the overlap covering most of the smaller (ris/search/same_picture.py). Pixel
    comparisons hold the first picture to its content: its own features' cells and those of
    the pictures pasted in it. Features recur across the matched pairs and, for the pictures
    of pairs nothing else holds, across their `crowds` (CROWD_MIN_SCORE). Features are taken
    from the `cache` where it holds the row as `states` says it was indexed, and kept there.
    With `shared_features`, the pairs of `paths` sharing many local features are candidates
    too, checked in the same way, except that such a pair no vector proposed is refused where
    it would be compared pixel for pixel for being held."""
    joined = UnionFind()
    if pictures is None:
        for pair in pairs:
            joined.union(*pair)
        return Verdicts(joined, 0, 0, len(pairs), 0, 0, 0, 0, 0)
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
        shared = (
            _shared_feature_pairs(pool, store, paths, threads, on_progress)
            if shared_features
            else {}
        )
        proposed = shared.keys() - pairs.keys()  # by shared features alone
        pairs = {**shared, **pairs}
        order = [pair for pair in _in_checking_order(pairs) if pairs[pair] < IDENTICAL_SCORE]

        def check(pair: tuple[int, int], at_least: int = WEAK_INLIERS) -> Match | None:
            first = store.get(pair[0], paths[pair[0]])
            second = store.get(pair[1], paths[pair[1]]) if first is not None else None
            if first is None or second is None:
                return None
            agreeing = match(first, second, at_least, stretch=True)
            return agreeing if agreeing is not None and agreeing.inliers >= at_least else None

        checked = _in_chunks(pool, check, order, "verifying", on_progress)
        found = {pair: agreeing for pair, agreeing in zip(order, checked, strict=True) if agreeing}
        matches = {
            pair: agreeing for pair, agreeing in found.items() if agreeing.inliers >= MIN_INLIERS
        }
        recurring = recurring_features(matches)
        if crowds:
            crowd = _crowd_pairs(_unheld(matches, recurring), crowds, pairs.keys())
            # Only verified matches count here: pairs short of MIN_INLIERS ratio matches stop
            # before RANSAC.
            crowd_checked = _in_chunks(
                pool, lambda pair: check(pair, MIN_INLIERS), crowd, "matching crowds", on_progress
            )
            crowd_matches = {
                pair: agreeing
                for pair, agreeing in zip(crowd, crowd_checked, strict=True)
                if agreeing
            }
            recurring = recurring_features({**matches, **crowd_matches})
        # A photo pasted into a page (a screenshot, a frame) is what a copy of it shares with
        # the photo: the page's features count as recurring. Looked for only in the pictures
        # of pairs nothing else holds.
        unheld = _unheld(matches, recurring)
        pasted = PastedCache(pictures, paths)
        framed = _frames(
            pool, store, pasted, sorted({row for pair in unheld for row in pair}), on_progress
        )
        for row, frame in framed.items():
            recurring.setdefault(row, set()).update(frame)
        # A pair only its shared features proposed must verify by features of its own: one
        # that recurring features hold (pages of one template, mirrored or laid out apart) or
        # that aligns in place (which vectors find) is refused, not compared pixel for pixel.
        needing = [
            pair for pair, found in matches.items() if needs_same_picture(pair, found, recurring)
        ]
        refused = proposed & set(needing)
        held = [pair for pair in needing if pair not in refused]
        greys = GreyCache(pictures, paths)

        def comparison(pair: tuple[int, int], agreeing: Match | None = None) -> Comparison:
            """The pair compared pixel for pixel, aligned by `agreeing` (by default its match),
            the first picture's own features and the pictures pasted in it its content."""
            agreeing = agreeing or found[pair]
            first, second = greys.get(pair[0]), greys.get(pair[1])
            features = store.get(pair[0], paths[pair[0]])
            if first is None or second is None or features is None:
                return APART
            own = own_points(features, recurring.get(pair[0], set()), agreeing)
            content = np.concatenate([own, cell_centres(pasted.get(pair[0]) or [])])
            return compared(first, second, agreeing, content)

        def confirms_weak_match(pair: tuple[int, int]) -> bool:
            """One picture pixel for pixel as matched, or else matched the other way round:
            matching is not symmetric, and the way round decides which picture is warped."""
            if comparison(pair).confirms_weak_match:
                return True
            reverse = (pair[1], pair[0])
            agreeing = check(reverse)
            return agreeing is not None and comparison(reverse, agreeing).confirms_weak_match

        same = _in_chunks(
            pool, lambda pair: comparison(pair).same_picture, held, "comparing pixels", on_progress
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
            if agreeing.inliers < MIN_INLIERS and joined.find(pair[0]) != joined.find(pair[1])
        ]
        confirmed = _in_chunks(
            pool,
            confirms_weak_match,
            weak,
            "comparing smooth pairs",
            on_progress,
        )
    smooth = [pair for pair, one in zip(weak, confirmed, strict=True) if one]
    for pair in smooth:
        joined.union(*pair)
    return Verdicts(
        joined,
        len(proposed),
        len(order),
        len(identical) + len(accepted) + len(smooth),
        len(held),
        len(weak),
        len(framed),
        store.extracted,
        store.cached,
    )


def _shared_feature_pairs(
    pool: ThreadPoolExecutor,
    store: FeatureStore,
    paths: dict[int, str],
    threads: int,
    on_progress: Progress,
) -> dict[tuple[int, int], float]:
    """The pairs of rows sharing many local features (ris/search/feature_votes.py), with no
    vector score (0): every row's features are read first, on the pool's threads."""
    rows = sorted(paths)
    _in_chunks(pool, lambda row: store.get(row, paths[row]), rows, "reading features", on_progress)
    # faiss's matrix products are BLAS calls: this stage runs alone, so on every thread.
    with threadpool_limits(max(1, threads), user_api="blas"):
        found = voted_pairs(
            lambda position: store.get(rows[position], paths[rows[position]]),
            len(rows),
            on_progress=on_progress,
        )
    return {(rows[first], rows[second]): 0.0 for first, second in found}


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


def _frames(
    pool: ThreadPoolExecutor,
    store: FeatureStore,
    pasted: PastedCache,
    rows: list[int],
    on_progress: Progress,
) -> dict[int, set[int]]:
    """The frame features (recurring.frame_features) of the rows holding a pasted picture."""

    def frame(row: int) -> set[int]:
        boxes = pasted.get(row)
        features = store.get(row, pasted.paths[row]) if boxes else None
        return set() if features is None or boxes is None else frame_features(features, boxes)

    frames = _in_chunks(pool, frame, rows, "finding pasted pictures", on_progress)
    return {row: found for row, found in zip(rows, frames, strict=True) if found}


def _in_chunks(
    pool: ThreadPoolExecutor,
    function: Callable[[Item], T],
    items: list[Item],
    stage: str,
    on_progress: Progress,
) -> list[T]:
    """`function` of every item on the pool's threads, progress reported a chunk at a time."""
    results: list[T] = []
    if items:
        on_progress(stage, 0, len(items))
    for start in range(0, len(items), VERIFY_CHUNK):
        results += pool.map(function, items[start : start + VERIFY_CHUNK])
        on_progress(stage, len(results), len(items))
    return results


class GreyCache:
    """Pictures as their features were found in, the latest few kept: the pairs held by
    recurring features share their pictures. Two threads may read one picture at once."""

    def __init__(self, pictures: Pictures, paths: dict[int, str], size: int = 256):
        self.get: Callable[[int], np.ndarray | None] = functools.lru_cache(maxsize=size)(
            lambda row_id: pictures.grey(paths[row_id])
        )


class PastedCache:
    """The boxes of the pictures pasted in each picture (Pictures.pasted_boxes), found once a
    picture; None when it cannot be read. Two threads may look at one picture at once."""

    def __init__(self, pictures: Pictures, paths: dict[int, str]):
        self.paths = paths
        self.get: Callable[[int], list[Box] | None] = functools.cache(
            lambda row_id: pictures.pasted_boxes(paths[row_id])
        )


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
) -> DuplicateReport:
    """Every group of near-duplicate images among the rows under `under` (all when empty).

    `min_score` defaults to VERIFIED_MIN_SCORE with verification, UNVERIFIED_MIN_SCORE without.
    Pictures' local features are kept in the `cache` (when given) for the next run. With
    verification, pairs sharing many local features are candidates too when `shared_features`
    says so, by default in collections of at most SHARED_FEATURES_MAX_ROWS rows.
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
    verdicts = accepted_pairs(
        found.pairs,
        found.paths,
        pictures if verify else None,
        threads,
        on_progress,
        cache,
        found.states,
        found.crowds,
        shared_features,
    )
    verified = time.perf_counter()
    groups = _groups(index, verdicts.joined.sets(), found, pictures)
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
        framed_pictures=verdicts.framed,
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
