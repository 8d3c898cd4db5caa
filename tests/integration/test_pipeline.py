"""The towhee pipeline: one call per batch, normalised vectors, failures kept per image."""

from pathlib import Path

import numpy as np

from ris.embedding.imaging import load_image
from ris.embedding.models import DEFAULT_MODEL, get_model_spec
from ris.embedding.pipeline import EmbeddingPipeline
from ris.embedding.runtime import make_embedder

DIM = get_model_spec(DEFAULT_MODEL).dim


def test_vectors_are_unit_length_and_match_the_model(
    pipeline: EmbeddingPipeline, model_path: Path, photos: list[Path]
) -> None:
    paths = [str(path) for path in photos[:5]]
    batch = pipeline(paths)
    assert batch.paths == paths and not batch.failures
    assert batch.vectors.shape == (5, DIM) and batch.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch.vectors, axis=1), 1.0, rtol=1e-5)
    # The same runtime and precision as the pipeline chose for this host, called directly.
    direct = make_embedder(pipeline.runtime, model_path, 2, 4)(
        np.stack([load_image(path, 224, 10**8) for path in paths])
    )
    direct /= np.linalg.norm(direct, axis=1, keepdims=True)
    np.testing.assert_allclose(batch.vectors, direct, atol=1e-5)


def test_a_bad_file_fails_alone(pipeline: EmbeddingPipeline, photos: list[Path], tmp_path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really")
    paths = [str(photos[0]), str(broken), str(tmp_path / "gone.png"), str(photos[1])]
    batch = pipeline(paths)
    assert batch.paths == [str(photos[0]), str(photos[1])]
    assert batch.vectors.shape == (2, DIM)
    assert set(batch.failures) == {str(broken), str(tmp_path / "gone.png")}
    assert batch.failures[str(tmp_path / "gone.png")] == "file not found"


def test_a_batch_of_only_bad_files_gives_no_vectors(pipeline: EmbeddingPipeline, tmp_path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("hello")
    batch = pipeline([str(text)])
    assert batch.paths == [] and batch.vectors.shape == (0, DIM)
    assert batch.failures == {str(text): "not an image (unrecognised format)"}
