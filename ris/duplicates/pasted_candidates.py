"""The pictures pasted in a collection's pictures (a screenshot's photo), cut out and checked as
pictures of their own: embedded alone, a pasted photo is near its original where the page's vector
is not, and its own local features match the original's where the page's are too few."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ris.duplicates.candidates import SEARCH_BATCH, Progress
from ris.errors import ImageDecodeError
from ris.files.changes import FileState
from ris.index.base import RowFilter, VectorIndex
from ris.search.pasted_pictures import pasted_pictures
from ris.search.verify import Pictures

# Nearest rows each pasted picture is a candidate with: its original, or a copy of it, was the
# nearest of each screenshot missed on augly (not tuned further).
PASTED_NEIGHBOURS = 3
# A pasted picture's nearest row scoring less is no candidate: the score from which a search
# puts a pasted picture's nearest first (image_search.PASTED_NEAREST_SCORE), not tuned here.
PASTED_MIN_SCORE = 0.6

# The pictures' vectors, in order.
Embed = Callable[[list[bytes]], np.ndarray]


class PastedPictures(NamedTuple):
    """The pictures cut out of rows, each under an id of its own (cut_id)."""

    paths: dict[int, str]  # cut id -> its file
    pages: dict[int, int]  # cut id -> the row it was cut out of
    states: dict[int, FileState]  # cut id -> the file state the index holds of its row
    # (cut id, row): score, each cut with its nearest rows; the cut first, as its features are
    # matched onto the row's
    pairs: dict[tuple[int, int], float]

    @classmethod
    def none(cls) -> PastedPictures:
        """No picture cut out (pasted pictures not looked for)."""
        return cls({}, {}, {}, {})


def cut_id(row: int, number: int) -> int:
    """The id of a row's `number`th pasted picture: the same in every run, so that its local
    features are kept between runs with its row's file state, as a row's are."""
    digest = hashlib.blake2b(f"pasted:{number}:{row}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def pasted_candidates(
    paths: dict[int, str],
    states: Mapping[int, FileState],
    pictures: Pictures,
    max_pixels: int,
    embed: Embed,
    index: VectorIndex,
    folder: Path,
    under: str = "",
    threads: int = 2,
    on_progress: Progress = lambda stage, done, total: None,
) -> PastedPictures:
    """The pictures pasted in the rows of `paths`, cut out into `folder`, each paired with its
    PASTED_NEIGHBOURS nearest rows (other than its own) scoring PASTED_MIN_SCORE or more."""
    rows = sorted(paths)

    def cut_out(row: int) -> list[bytes]:
        try:
            return pasted_pictures(pictures.readable(paths[row]), max_pixels)
        except ImageDecodeError:  # recorded where the row's own features are read
            return []

    found = PastedPictures.none()
    on_progress("cutting out pasted pictures", 0, len(rows))
    with ThreadPoolExecutor(max(1, threads), thread_name_prefix="pasted") as pool:
        for done, (row, pasted) in enumerate(
            zip(rows, pool.map(cut_out, rows), strict=True), start=1
        ):
            for number, picture in enumerate(pasted):
                cut = cut_id(row, number)
                path = folder / f"{cut}.png"
                path.write_bytes(picture)
                found.paths[cut] = str(path)
                found.pages[cut] = row
                if row in states:
                    found.states[cut] = states[row]
            on_progress("cutting out pasted pictures", done, len(rows))
    where = RowFilter(prefixes=(under,)) if under else None
    cuts = list(found.paths)
    # Embedded and searched in batches: an index request costs about the same for 1 vector as
    # for 256 (Milvus Lite: 0.1-0.3 s).
    on_progress("searching pasted pictures", 0, len(cuts))
    for start in range(0, len(cuts), SEARCH_BATCH):
        batch, vectors = _embedded(cuts[start : start + SEARCH_BATCH], found.paths, embed)
        if not batch:
            continue
        for cut, hits in zip(
            batch, index.search(vectors, PASTED_NEIGHBOURS + 1, where), strict=True
        ):
            near = [hit for hit in hits if hit.id != found.pages[cut]][:PASTED_NEIGHBOURS]
            found.pairs.update(
                ((cut, hit.id), hit.score) for hit in near if hit.score >= PASTED_MIN_SCORE
            )
        on_progress("searching pasted pictures", min(start + SEARCH_BATCH, len(cuts)), len(cuts))
    return found


def _embedded(cuts: list[int], paths: dict[int, str], embed: Embed) -> tuple[list[int], np.ndarray]:
    """The cuts that embed, and their vectors: all in one call, or else one by one when one of
    them did not decode."""
    vectors = embed([Path(paths[cut]).read_bytes() for cut in cuts])
    if len(vectors) == len(cuts):
        return cuts, vectors
    each = {cut: embed([Path(paths[cut]).read_bytes()]) for cut in cuts}
    kept = [cut for cut in cuts if len(each[cut])]
    return kept, np.concatenate([each[cut] for cut in kept]) if kept else vectors[:0]
