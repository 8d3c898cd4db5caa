"""Pictures pasted in a collection's pictures, cut out and checked as pictures of their own: a
photo shown small in a web page groups the page with the photo, and the pages' template joins
nothing; a later run reads none of them again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ris.dev.services import LocalMilvusLite
from ris.duplicates.groups import FEATURE_COUNT, FEATURE_FEW, FEATURE_SIDE, find_duplicates
from ris.embedding.pipeline import EmbeddingPipeline
from ris.files.remote import FetchOptions, Remote
from ris.index.milvus import MilvusIndex
from ris.search.feature_cache import FeatureCache
from tests.imagefiles import web_page
from tests.integration.test_verify import MAX_PIXELS
from workers.ingest import process_batch

PASTED_WIDTH = 200  # px of the 1,000 px page: too small for the page's vector or features


@pytest.fixture(scope="module")
def pages_and_photos(
    milvus_server: LocalMilvusLite,
    photos: list[Path],
    pipeline: EmbeddingPipeline,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[MilvusIndex, list[Path]]]:
    """Twelve photos and four pages of one template showing the first four, indexed together;
    the pages."""
    folder = tmp_path_factory.mktemp("pasted-candidates")
    shown = [web_page(photo, folder, PASTED_WIDTH)[0] for photo in photos[:4]]
    index = MilvusIndex(milvus_server.url, "pasted_candidates", dim=pipeline.dim)
    index.drop()
    process_batch([str(path) for path in [*photos[:12], *shown]], pipeline, index)
    index.flush()
    yield index, shown
    index.drop()
    index.close()


def _groups(index: MilvusIndex, pipeline: EmbeddingPipeline, embed: bool) -> set[frozenset[str]]:
    report = find_duplicates(
        index,
        Remote(FetchOptions()),
        MAX_PIXELS,
        embed=(lambda pictures: pipeline(pictures).vectors) if embed else None,
    )
    return {frozenset(Path(image.path).name for image in group.images) for group in report.groups}


def test_a_photo_shown_small_in_a_page_groups_the_page_with_the_photo(
    pages_and_photos: tuple[MilvusIndex, list[Path]],
    photos: list[Path],
    pipeline: EmbeddingPipeline,
) -> None:
    index, shown = pages_and_photos
    expected = {
        frozenset({page.name, photo.name}) for page, photo in zip(shown, photos, strict=False)
    }
    # The page's own vector and features find some of them at most.
    assert _groups(index, pipeline, embed=False) < expected
    # Cut out of its page, each photo finds its original; the pages' template joins nothing.
    assert _groups(index, pipeline, embed=True) == expected


def test_a_run_after_the_first_reads_no_pasted_picture_again(
    pages_and_photos: tuple[MilvusIndex, list[Path]],
    pipeline: EmbeddingPipeline,
    tmp_path: Path,
) -> None:
    """The pictures cut out keep their features between runs, by their page's file state."""
    index, shown = pages_and_photos
    cache = FeatureCache(tmp_path, 2**30, FEATURE_SIDE, FEATURE_COUNT, FEATURE_FEW)
    runs = [
        find_duplicates(
            index,
            Remote(FetchOptions()),
            MAX_PIXELS,
            cache=cache,
            embed=lambda pictures: pipeline(pictures).vectors,
        )
        for _ in range(2)
    ]
    assert runs[0].pasted_pictures >= len(shown) and runs[0].read_pictures > runs[0].rows
    assert runs[1].pasted_pictures == runs[0].pasted_pictures
    assert (runs[1].read_pictures, runs[1].cached_pictures) == (0, runs[0].read_pictures)
    assert runs[1].groups == runs[0].groups
