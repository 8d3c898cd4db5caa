"""The converted model is the real pretrained EfficientNet-Lite0, on ONNX Runtime."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ris.convert.export import build_reference_model, ensure_onnx_model
from ris.datasets.samples import imagenet_label
from ris.embedding.imaging import load_image
from ris.embedding.models import BACKBONES, DEFAULT_MODEL, MODELS, get_model_spec, onnx_model_path
from ris.embedding.session import OnnxEmbedder, execution_providers, l2_normalise
from ris.errors import DeviceUnavailableError

SPEC = get_model_spec(DEFAULT_MODEL)


def _decode(paths: list[Path]) -> np.ndarray:
    return np.stack([load_image(str(path), SPEC.input_size, 10**8) for path in paths])


def test_onnx_features_match_the_pytorch_reference(
    model_path: Path, photos: list[Path], cache_dir: Path
) -> None:
    torch = pytest.importorskip("torch")
    images = _decode(photos[:12])
    with torch.no_grad():
        reference, _ = build_reference_model(SPEC, cache_dir)(torch.from_numpy(images))
    reference = reference.numpy()
    onnx = OnnxEmbedder(str(model_path), threads=2, model_batch_size=4)(images)
    cosine = (onnx * reference).sum(1) / (
        np.linalg.norm(onnx, axis=1) * np.linalg.norm(reference, axis=1)
    )
    assert onnx.shape == (12, SPEC.dim)
    assert cosine.min() > 0.9999, cosine


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_classifier_head_names_the_right_imagenet_class(
    backbone: str, cache_dir: Path, imagenet: list[Path]
) -> None:
    """Every backbone's weights are the pretrained ones (MobileNetV2's network is ours)."""
    spec = next(spec for spec in MODELS.values() if spec.backbones == (backbone,))
    assert len(imagenet) == 20
    embedder = OnnxEmbedder(str(ensure_onnx_model(spec.name, cache_dir)), 2, 4)
    images = np.stack([load_image(str(path), spec.input_size, 10**8) for path in imagenet])
    predicted = embedder.logits(images).argmax(axis=1)
    correct = sum(
        int(p) == imagenet_label(path) for p, path in zip(predicted, imagenet, strict=True)
    )
    assert correct >= 16, f"top-1 {correct}/20: the weights are not the pretrained ones"


def test_results_do_not_depend_on_the_model_batch_size(
    model_path: Path, photos: list[Path]
) -> None:
    images = _decode(photos[:6])
    one = OnnxEmbedder(str(model_path), threads=1, model_batch_size=1)(images)
    six = OnnxEmbedder(str(model_path), threads=2, model_batch_size=6)(images)
    np.testing.assert_allclose(one, six, rtol=1e-4, atol=1e-4)


def test_conversion_is_cached_by_recipe(model_path: Path, cache_dir: Path) -> None:
    assert model_path == onnx_model_path(SPEC, cache_dir)
    assert SPEC.name in model_path.name and len(model_path.stem.rsplit("-", 1)[1]) == 16
    modified = model_path.stat().st_mtime_ns
    assert ensure_onnx_model(SPEC.name, cache_dir) == model_path
    assert model_path.stat().st_mtime_ns == modified


def test_check_finds_the_cached_model_without_converting(model_path: Path, cache_dir: Path) -> None:
    """What a runtime image relies on: the model baked in at build time (test_boundaries shows
    a worker then never imports torch)."""
    env = {**os.environ, "RIS_CACHE_DIR": str(cache_dir)}
    checked = subprocess.run(
        [sys.executable, "-m", "ris_cli.convert", "--check"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert (checked.returncode, checked.stdout.strip()) == (0, str(model_path))


def test_the_converted_file_is_readable_by_other_users(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    assert ensure_onnx_model("efficientnet-lite0", tmp_path).stat().st_mode & 0o777 == 0o644


def test_check_without_a_converted_model_fails_in_one_line(tmp_path: Path) -> None:
    checked = subprocess.run(
        [sys.executable, "-m", "ris_cli.convert", "--check"],
        env={**os.environ, "RIS_CACHE_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 1
    assert checked.stderr.startswith(f"Error: {tmp_path}/models/{DEFAULT_MODEL}-")
    assert checked.stderr.count("\n") == 1


def test_cuda_without_a_gpu_is_a_clear_error_not_a_silent_cpu_run() -> None:
    with pytest.raises(DeviceUnavailableError, match="CUDAExecutionProvider"):
        execution_providers("cuda")
    with pytest.raises(DeviceUnavailableError, match="unknown device"):
        execution_providers("tpu")


def test_cuda_that_cannot_start_is_an_error_not_a_cpu_fallback(
    model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As onnxruntime-gpu does on a host without a visible GPU: CUDA listed, session on CPU."""
    monkeypatch.setattr(
        "ris.embedding.session.ort.get_available_providers",
        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"],
    )
    with pytest.raises(DeviceUnavailableError, match="could not start CUDAExecutionProvider"):
        OnnxEmbedder(str(model_path), threads=1, model_batch_size=4, device="cuda")


COMPACT = get_model_spec("lite0-mobilenet-v2-gem-deframe-384")


def _centre_crops(photos: list[Path], folder: Path) -> list[Path]:
    """The middle 60% of each photo, re-encoded as a JPEG: a copy someone cropped."""
    crops = []
    for path in photos:
        with Image.open(path) as image:
            width, height = image.size
            box = (width // 5, height // 5, width - width // 5, height - height // 5)
            crop = folder / f"{path.stem}-crop.jpg"
            image.convert("RGB").crop(box).save(crop, quality=80)
        crops.append(crop)
    return crops


def test_the_compact_model_finds_what_the_default_finds(
    model_path: Path, photos: list[Path], cache_dir: Path, tmp_path: Path
) -> None:
    """Projected to 384-d at conversion (learned on wallpaper crops, none of these photos):
    cropped copies still find their originals, as with the 2560-d default."""
    originals, crops = _decode(photos), _decode(_centre_crops(photos, tmp_path))
    found = {}
    for spec, path in ((COMPACT, ensure_onnx_model(COMPACT.name, cache_dir)), (SPEC, model_path)):
        embedder = OnnxEmbedder(str(path), 2, 4)
        gallery, queries = l2_normalise(embedder(originals)), l2_normalise(embedder(crops))
        assert gallery.shape == (len(photos), spec.dim)
        hits = (queries @ gallery.T).argmax(axis=1)
        found[spec.name] = float((hits == np.arange(len(photos))).mean())
    assert found[SPEC.name] >= 0.9
    assert found[COMPACT.name] >= found[SPEC.name] - 0.05, found
