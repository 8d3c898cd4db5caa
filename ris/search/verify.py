"""Spatial verification: local features of the query and a hit that agree on one geometry."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ris.embedding.imaging import ImageSource, decoding, open_image, upright_rgb
from ris.errors import ImageDecodeError
from ris.files.identity import is_url
from ris.files.remote import Remote
from ris.search.pasted_pictures import Box, picture_boxes

# Images are matched at most this many pixels on a side: hard copies verified as often at 256,
# 320, 384 and 512 on the development sets; 320 keeps a margin over the smallest.
MAX_SIDE = 320
# Half OpenCV's default: twice the keypoints on low-contrast, JPEG-smoothed copies.
CONTRAST_THRESHOLD = 0.02
# A query picture smaller than this on its longer side (a thumbnail, a small crop) is also
# looked at enlarged to it, at a quarter of OpenCV's contrast threshold (several times the
# keypoints), and a hit keeps the better of its two matches. Chosen on augly-hard; through the
# product, augly2-hard recall@1 0.546 -> 0.564, copydetect-hard unchanged at 0.963, searches of
# such queries that verify nothing about 100 ms slower (docs/BENCHMARKS.md, "Small queries").
SMALL_QUERY_SIDE = 160
SMALL_QUERY_CONTRAST = 0.01
# A picture with fewer keypoints than a caller's `few_features` (a smooth gradient, a flat
# drawing, a blurred copy) keeps those of this contrast threshold, a quarter of the usual:
# duplicate groups chose 100 at 0.005 on augly and the copy-detection sets (docs/BENCHMARKS.md,
# "Smooth pictures"). One detection serves both: OpenCV keeps a keypoint when its response
# times the octave's layers (OCTAVE_LAYERS, its default) reaches the threshold, so those at
# the usual threshold are the low one's with such a response (the same set on 99 of 99
# photos; 12.5 ms a picture against 11 ms, and 15.5 ms for detecting twice).
LOW_CONTRAST = 0.005
OCTAVE_LAYERS = 3
# The strongest keypoints kept: as many verified copies as keeping all of them on the
# development sets, in about 60% of the time (matching grows with the square of the count).
MAX_FEATURES = 1000
# Lowe's ratio test: a match counts when clearly better than the second best.
RATIO = 0.8
RANSAC_PIXELS = 5.0
# A copy is scaled, cropped, rotated and flipped at most this much against its original.
SCALE_RANGE = (0.1, 10.0)
# A copy stretched to another aspect ratio (squeezed into a square, resized to fit a screen)
# agrees with its original under no similarity. Where a caller allows it, a pair no similarity
# fits is tried under a full affine transform stretched at most this much (its smaller
# singular value over its larger)...
STRETCH_LIMIT = 0.25
# ...which must keep this many features: six degrees of freedom fit chance matches more
# easily than four. Chosen on augly's candidate pairs: 15 verified 11 more true pairs and no
# wrong one, 10 verified 21 and 2 (docs/BENCHMARKS.md, "Stretched copies, crowds and content").
STRETCHED_INLIERS = 15
# Matches consistent with one similarity transform that make a hit a verified copy. On the
# development sets no wrong hit reached 9, and hard copies (25-50% crops, JPEG 20-50) have 20.
MIN_INLIERS = 10
# A direct match this strong is taken as it is. A weaker one may be chance agreement of a
# mirrored copy (a face, a building's symmetric front), so the flipped query is tried too and
# the stronger kept: its transform, not just its count, is used by duplicate groups.
CONFIDENT_INLIERS = 2 * MIN_INLIERS
# A SIFT descriptor is a 4 x 4 grid of 8-bin gradient histograms, in the keypoint's own frame.
# Flipping the picture left to right reverses the grid's rows and negates each gradient's angle:
# this permutation gave exactly the descriptors detected on the flipped pixels.
_MIRROR = np.arange(128).reshape(4, 4, 8)[::-1][:, :, -np.arange(8) % 8].reshape(-1)


@dataclass(frozen=True)
class LocalFeatures:
    """SIFT keypoint positions and descriptors of one image."""

    points: np.ndarray  # (n, 2) float32
    descriptors: np.ndarray  # (n, 128) float32


def _grey(source: ImageSource, max_pixels: int, max_side: int) -> np.ndarray:
    """The image upright, transparency on white, grey, at most `max_side` on a side."""
    return _decoded(source, max_pixels, max_side, "L")


def _decoded(source: ImageSource, max_pixels: int, max_side: int, mode: str) -> np.ndarray:
    """The image upright, transparency on white, in `mode` ("L" or "RGB"), at most `max_side`
    on a side: the same pixels whichever the mode."""
    with open_image(source, max_pixels) as image, decoding():
        pixels = np.asarray(upright_rgb(image, source, max_side).convert(mode))
    scale = max_side / max(pixels.shape[:2])
    return _scaled(pixels, scale, cv2.INTER_AREA) if scale < 1 else pixels


def _scaled(pixels: np.ndarray, scale: float, interpolation: int) -> np.ndarray:
    """Grey or colour `pixels` resized by `scale` (at least one pixel a side)."""
    size = (max(1, round(pixels.shape[1] * scale)), max(1, round(pixels.shape[0] * scale)))
    return cv2.resize(pixels, size, interpolation=interpolation)


def local_features(
    source: ImageSource,
    max_pixels: int,
    max_side: int = MAX_SIDE,
    max_features: int = MAX_FEATURES,
    few_features: int = 0,
) -> LocalFeatures:
    """SIFT features of an image file or upload, those of LOW_CONTRAST too when fewer than
    `few_features` reach the usual threshold; raises ImageDecodeError if it cannot be read."""
    return grey_features(_grey(source, max_pixels, max_side), max_features, few_features)


def grey_features(
    grey: np.ndarray, max_features: int = MAX_FEATURES, few_features: int = 0
) -> LocalFeatures:
    """SIFT features of a grey picture already read, as `local_features` finds them."""
    if not few_features:
        return _detected(grey, max_features, CONTRAST_THRESHOLD)
    return _detected(grey, max_features, LOW_CONTRAST, few_features)


@dataclass(frozen=True)
class QueryView:
    """One way a search's query picture is looked at: grey, as its features were found in."""

    grey: np.ndarray
    features: LocalFeatures


def query_views(source: ImageSource, max_pixels: int) -> tuple[QueryView, ...]:
    """A search's query picture as a hit's features are found and, for a picture under
    SMALL_QUERY_SIDE, enlarged to it and detected at SMALL_QUERY_CONTRAST (points in the
    enlarged picture, which a similarity transform absorbs). Raises ImageDecodeError if it
    cannot be read."""
    grey = _grey(source, max_pixels, MAX_SIDE)
    as_it_is = QueryView(grey, _detected(grey, MAX_FEATURES, CONTRAST_THRESHOLD))
    side = max(grey.shape)
    if side >= SMALL_QUERY_SIDE:
        return (as_it_is,)
    enlarged = _scaled(grey, SMALL_QUERY_SIDE / side, cv2.INTER_CUBIC)
    return as_it_is, QueryView(enlarged, _detected(enlarged, MAX_FEATURES, SMALL_QUERY_CONTRAST))


def _detected(
    grey: np.ndarray, max_features: int, contrast: float, few_features: int = 0
) -> LocalFeatures:
    """SIFT features at `contrast`; with `few_features`, only those reaching
    CONTRAST_THRESHOLD unless fewer than that many do."""
    detector = cv2.SIFT.create(
        nfeatures=max_features, nOctaveLayers=OCTAVE_LAYERS, contrastThreshold=contrast
    )
    keypoints, descriptors = detector.detectAndCompute(grey, None)
    # OpenCV 5.0 gives None for no features, 5.1 an empty array.
    if descriptors is None or len(keypoints) == 0:
        return LocalFeatures(np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32))
    points = np.array([point.pt for point in keypoints], dtype=np.float32)
    if few_features:
        usual = np.array([point.response for point in keypoints]) * OCTAVE_LAYERS
        strong = usual >= CONTRAST_THRESHOLD
        if strong.sum() >= few_features:
            return LocalFeatures(points[strong], descriptors[strong])
    return LocalFeatures(points, descriptors)


@dataclass(frozen=True)
class Match:
    """Two pictures' features that agree on one geometry: which of each (positions in their
    LocalFeatures), and the similarity transform (or, where asked, a stretched affine one)
    taking the first's points onto the second's (after flipping the first left to right when
    `mirrored`)."""

    first: np.ndarray  # (n,) int
    second: np.ndarray  # (n,) int
    transform: np.ndarray  # (2, 3)
    mirrored: bool

    @property
    def inliers(self) -> int:
        return len(self.first)


def mirrored(features: LocalFeatures) -> LocalFeatures:
    """The features of the picture flipped left to right, without detecting them again."""
    flip = np.array([-1, 1], dtype=np.float32)
    return LocalFeatures(features.points * flip, features.descriptors[:, _MIRROR])


def inliers(query: LocalFeatures, candidate: LocalFeatures) -> int:
    """How many of the query's features map onto the candidate's under one similarity
    transform (scale, rotation, translation), found by RANSAC; a query that does not match
    as it is is tried flipped left to right (a mirrored copy)."""
    found = match(query, candidate)
    return 0 if found is None else found.inliers


def match(
    query: LocalFeatures, candidate: LocalFeatures, at_least: int = 0, stretch: bool = False
) -> Match | None:
    """The query's features that map onto the candidate's under one similarity transform, as
    `inliers` counts them; None when no transform is found either way. With `at_least`, a way
    round (as it is, or mirrored) in which fewer features pass the ratio test stops before
    RANSAC, which could keep no more of them: most pairs of different pictures stop there.
    With `stretch`, a way round that no similarity fits by MIN_INLIERS may fit a stretched
    affine transform by STRETCHED_INLIERS."""
    direct = _match(query, candidate, False, at_least, stretch)
    if direct is not None and direct.inliers >= CONFIDENT_INLIERS:
        return direct
    flipped = _match(mirrored(query), candidate, True, at_least, stretch)
    if flipped is not None and (direct is None or flipped.inliers > direct.inliers):
        return flipped
    return direct


def _match(
    query: LocalFeatures, candidate: LocalFeatures, flipped: bool, at_least: int, stretch: bool
) -> Match | None:
    if len(query.descriptors) < 2 or len(candidate.descriptors) < 2:
        return None
    query_index, train_index = _ratio_matches(query.descriptors, candidate.descriptors)
    if len(query_index) < max(3, at_least):
        return None
    points = query.points[query_index], candidate.points[train_index]
    fitted = _fitted(*points, cv2.estimateAffinePartial2D)
    if (
        stretch
        and len(query_index) >= STRETCHED_INLIERS
        and (fitted is None or fitted[1].sum() < MIN_INLIERS)
    ):
        stretched = _fitted(*points, cv2.estimateAffine2D)
        if stretched is not None and stretched[1].sum() >= STRETCHED_INLIERS:
            fitted = stretched
    if fitted is None:
        return None
    transform, kept = fitted
    return Match(query_index[kept], train_index[kept], transform, flipped)


def _fitted(
    source: np.ndarray, target: np.ndarray, estimate: Callable[..., Any]
) -> tuple[np.ndarray, np.ndarray] | None:
    """(transform, which points agree with it) as OpenCV's `estimate` fits it by RANSAC;
    None when none is found or it scales, stretches or mirrors beyond what a copy is."""
    transform, mask = estimate(
        source, target, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PIXELS
    )
    if transform is None or not np.isfinite(transform).all():
        return None
    (a, b, _), (c, d, _) = transform.tolist()
    determinant = a * d - b * c
    if determinant <= 0:  # mirrored (found by flipping the query instead) or flat
        return None
    # The linear part's singular values in closed form (a 2 x 2 SVD costs 40 times as much):
    # their product is the determinant, the sum of their squares that of the entries. Equal
    # for a similarity, apart for a stretch.
    squares = a * a + b * b + c * c + d * d
    larger = math.sqrt((squares + math.sqrt(max(squares**2 - 4 * determinant**2, 0.0))) / 2)
    smaller = determinant / larger
    scale = math.sqrt(determinant)
    if not SCALE_RANGE[0] < scale < SCALE_RANGE[1] or smaller < STRETCH_LIMIT * larger:
        return None
    return transform, mask.ravel().astype(bool)


def _ratio_matches(query: np.ndarray, candidate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(query positions, candidate positions) of the matches that pass Lowe's ratio test, at
    most one per candidate feature (the closest): many query features piling onto one point
    would otherwise fit a transform that shrinks everything to that point. Distances come from
    one matrix product, as a brute-force L2 matcher finds them, at a fraction of its cost in
    Python objects."""
    # |q - c|^2 = |q|^2 + |c|^2 - 2 q.c: a query feature's nearest two are found on
    # |c|^2 - 2 q.c, in place, and its own |q|^2 added to those two alone.
    squared = query @ candidate.T
    squared *= -2.0
    squared += np.einsum("ij,ij->i", candidate, candidate)[None, :]
    rows = np.arange(len(query))
    train = np.argmin(squared, axis=1)
    best = squared[rows, train]
    squared[rows, train] = np.inf
    second = squared.min(axis=1)
    own = np.einsum("ij,ij->i", query, query)
    best += own
    second += own
    passed = np.flatnonzero(best < RATIO**2 * second)
    # The closest query feature per candidate feature: sort by distance, keep each first.
    by_distance = passed[np.argsort(best[passed], kind="stable")]
    _, closest = np.unique(train[by_distance], return_index=True)
    # In the order each candidate feature was first matched, as a matcher walking the query's
    # features gives them: RANSAC's fixed-seed samples, and so its verdicts, depend on it.
    _, first_matched = np.unique(train[passed], return_index=True)
    kept = by_distance[closest][np.argsort(first_matched, kind="stable")]
    return kept, train[kept]


class Pictures:
    """Indexed pictures read as verification needs them: files, or objects by URL."""

    def __init__(
        self,
        remote: Remote,
        max_pixels: int,
        max_side: int = MAX_SIDE,
        max_features: int = MAX_FEATURES,
        few_features: int = 0,
    ):
        self.remote = remote
        self.max_pixels = max_pixels
        self.max_side = max_side
        self.max_features = max_features
        self.few_features = few_features

    def readable(self, source: ImageSource) -> ImageSource:
        """A path or bytes Pillow can open: a URL's bytes are fetched."""
        return self.remote.fetch(source) if isinstance(source, str) and is_url(source) else source

    def features(self, path: str) -> LocalFeatures | None:
        """The picture's local features; None when it cannot be read (any more)."""
        try:
            source = self.readable(path)
            return local_features(
                source, self.max_pixels, self.max_side, self.max_features, self.few_features
            )
        except ImageDecodeError:
            return None

    def grey(self, path: str, side: int | None = None) -> np.ndarray | None:
        """The picture as its features are found in: grey, at most `max_side` (or `side`);
        None when it cannot be read (any more)."""
        try:
            return _grey(self.readable(path), self.max_pixels, side or self.max_side)
        except ImageDecodeError:
            return None

    def colour(self, path: str) -> np.ndarray | None:
        """The picture in RGB at the size its features are found at; None when it cannot be
        read (any more)."""
        try:
            return _decoded(self.readable(path), self.max_pixels, self.max_side, "RGB")
        except ImageDecodeError:
            return None

    def pasted_boxes(self, path: str) -> list[Box] | None:
        """The boxes of the pictures pasted inside the picture (a screenshot's photo, a framed
        picture: ris/search/pasted_pictures.py), in the pixels its features are found at;
        None when it cannot be read (any more)."""
        try:
            boxes, (width, height) = picture_boxes(
                self.readable(path), self.max_pixels, self.max_side
            )
        except ImageDecodeError:
            return None
        # The decode's size as _grey scales it to the features' pixels.
        scale = min(1.0, self.max_side / max(height, width))
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
        return [
            (left * width, top * height, right * width, bottom * height)
            for left, top, right, bottom in boxes
        ]

    def size(self, path: str) -> tuple[int, int] | None:
        """(width, height) from the picture's header; None when it cannot be read."""
        try:
            with open_image(self.readable(path), self.max_pixels) as image:
                return image.size
        except ImageDecodeError:
            return None
