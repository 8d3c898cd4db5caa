"""The towhee pipeline: one call per batch, normalised vectors, failures kept per image."""

from pathlib import Path

import numpy as np

from ris.embedding.imaging import ImageSource, load_image
from ris.embedding.models import DEFAULT_MODEL, get_model_spec
from ris.embedding.pipeline import DecodeImages, EmbeddingPipeline, EmbedImages
from ris.embedding.runtime import REFERENCE, make_embedder

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


def test_chunks_on_parallel_lanes_give_the_vectors_of_one_session(
    model_path: Path, photos: list[Path], tmp_path: Path
) -> None:
    # 10 photos and a broken file make three chunks of 4: run on two one-thread sessions at
    # once, in order, and the same as one two-thread session running one image at a time.
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really")
    sources: list[ImageSource] = [str(path) for path in photos[:5]]
    sources += [str(broken)] + [str(path) for path in photos[5:10]]
    decode = DecodeImages(size=224, max_pixels=10**8, threads=2)
    embed = EmbedImages(
        str(model_path), threads=2, model_batch_size=4, device="cpu", choice=REFERENCE
    )
    kept, features, failures = embed(decode(sources))
    assert embed.lane_count == 2 and embed._lane_pool is not None
    assert kept == [source for source in sources if source != str(broken)]
    assert list(failures) == [str(broken)]
    one_at_a_time = np.concatenate([embed(decode([source]))[1] for source in kept])
    np.testing.assert_allclose(features, one_at_a_time, rtol=1e-4, atol=1e-5)
