"""The Python API: the README's example run as written, and the API's edges."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ris.embedding.pipeline import EmbeddingPipeline
from ris.errors import CollectionMissingError, ImageDecodeError
from ris.index.milvus import MilvusIndex
from ris_api import Client
from tests.helpers import REPO
from workers.ingest import process_batch

pytestmark = pytest.mark.e2e


def readme_example() -> str:
    """The first Python block of the README's "Python API" section."""
    section = (REPO / "README.md").read_text().split("## Python API", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the README's Python API section has no python block"
    return match.group(1)


def test_the_readme_example_runs_as_written(
    ris_env: dict[str, str],
    start_workers,
    photos: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in photos[16:24]:
        Image.open(photo).convert("RGB").save(folder / f"{photo.stem}.jpg", quality=92)
    chelsea = next(photo for photo in photos if photo.name == "chelsea.png")
    Image.open(chelsea).convert("RGB").save(folder / "cat.jpg", quality=92)
    monkeypatch.chdir(tmp_path)
    start_workers(1)

    exec(compile(readme_example(), "README.md", "exec"), {})

    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "9 indexed, 0 failed {}"
    assert printed[1].startswith("1 1.000 ") and printed[1].rstrip().endswith("cat.jpg")
    assert printed[-1] == "0 groups of near-duplicates among 9 images"


def test_arrays_bytes_and_unreadable_queries(
    ris_env: dict[str, str], index: MilvusIndex, pipeline: EmbeddingPipeline, photos: list[Path]
) -> None:
    process_batch([str(p) for p in photos[:6]], pipeline, index)
    index.flush()
    with Client() as client:
        pixels = np.asarray(Image.open(photos[2]).convert("RGB"))
        assert client.search(pixels, top_k=1)[0].path == str(photos[2])
        outcomes = client.search_many([b"not an image", photos[3].read_bytes()], top_k=1)
        assert isinstance(outcomes[0], ImageDecodeError)
        assert not isinstance(outcomes[1], ImageDecodeError)
        assert outcomes[1][0].path == str(photos[3])
        with pytest.raises(ImageDecodeError, match="not an image"):
            client.search(b"still not an image")


def test_searching_before_anything_is_indexed_is_the_projects_error(ris_env) -> None:
    with Client() as client, pytest.raises(CollectionMissingError, match="producer enqueue"):
        client.search(np.zeros((32, 32, 3), np.uint8))
