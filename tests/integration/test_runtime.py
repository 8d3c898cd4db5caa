"""Inference runtime and precision: what `auto` picks per host, the quality gate, same answers."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ris.embedding.imaging import load_image
from ris.embedding.models import DEFAULT_MODEL, gate_images, get_model_spec
from ris.embedding.openvino_session import (
    OpenVinoEmbedder,
    _core,
    high_resolution_cuts,
    openvino_capabilities,
    split_at,
)
from ris.embedding.pipeline import EmbeddingPipeline
from ris.embedding.runtime import (
    BATCH_SIZES,
    REFERENCE,
    Candidate,
    GateThresholds,
    Measured,
    batch_speeds,
    choose_runtime,
    cosine_rows,
    fastest_batch,
    host_candidates,
    host_profile,
    make_embedder,
    measure,
    precisions_passed,
)
from ris.errors import DeviceUnavailableError
from ris.settings import Settings

SPEC = get_model_spec(DEFAULT_MODEL)
CAPABILITIES = openvino_capabilities()
# A model that passed the gate in bf16 on the development sets, as the default model has.
BF16_PASSED = frozenset({"f32", "bf16"})
# A model that has not been through the gate below f32.
NOT_GATED = "efficientnet-lite0"
needs_bf16 = pytest.mark.skipif("BF16" not in CAPABILITIES, reason="this CPU has no BF16")


@pytest.fixture(scope="module")
def gate_photos(cache_dir: Path) -> np.ndarray:
    return np.load(gate_images(SPEC, cache_dir))


@pytest.fixture(scope="module")
def profile(model_path: Path, gate_photos: np.ndarray) -> list[Measured]:
    """Every runtime x precision this host supports, measured now on the gate's 36 photos."""
    return measure(host_candidates(CAPABILITIES), model_path, gate_photos, 2, 4)


def test_openvino_and_bf16_are_candidates_where_the_host_has_them() -> None:
    assert "FP32" in CAPABILITIES, "the test extra installs the openvino package"
    labels = [candidate.label for candidate in host_candidates(CAPABILITIES)]
    assert labels[:2] == ["onnxruntime/f32", "openvino/f32"]
    assert ("openvino/bf16" in labels) == ("BF16" in CAPABILITIES)
    assert [c.label for c in host_candidates(set())] == ["onnxruntime/f32"]


def test_the_reference_agrees_with_itself_and_f32_runtimes_agree(profile: list[Measured]) -> None:
    rows = {row.candidate.label: row for row in profile}
    assert rows["onnxruntime/f32"].cos_min > 0.99999
    assert rows["openvino/f32"].cos_min > 0.9999
    assert all(row.ips > 0 for row in profile)


@needs_bf16
def test_bf16_passes_the_gate_on_this_host(profile: list[Measured]) -> None:
    bf16 = next(row for row in profile if row.precision == "bf16")
    assert bf16.passes(GateThresholds()), bf16
    assert bf16.cos_min < 0.99999, "bf16 was not really used: it matches f32 exactly"


def test_auto_picks_the_fastest_configuration_that_passed(profile: list[Measured]) -> None:
    choice = choose_runtime(
        "auto", "auto", "cpu", lambda _: profile, CAPABILITIES, allowed=BF16_PASSED
    )
    fastest = max((row for row in profile if row.passes(GateThresholds())), key=lambda r: r.ips)
    assert choice.label == fastest.candidate.label
    assert choice.reason.startswith("fastest that passed the quality gate")


def test_auto_on_a_host_without_bf16_runs_f32(profile: list[Measured]) -> None:
    """A CPU without BF16, simulated by the capabilities OpenVINO would report there."""
    no_bf16 = {"FP32", "INT8"}
    choice = choose_runtime("auto", "auto", "cpu", lambda _: profile, no_bf16, allowed=BF16_PASSED)
    assert choice.precision == "f32"
    assert "bf16" not in choice.reason
    with pytest.raises(DeviceUnavailableError, match="RIS_PRECISION=bf16 cannot run"):
        choose_runtime("auto", "bf16", "cpu", lambda _: profile, no_bf16, allowed=BF16_PASSED)


def test_only_precisions_that_passed_on_the_development_sets_are_allowed() -> None:
    assert precisions_passed(DEFAULT_MODEL) == {"f32", "bf16"}
    assert precisions_passed(NOT_GATED) == {"f32"}


@needs_bf16
def test_a_precision_that_did_not_pass_on_the_development_sets_never_runs(
    profile: list[Measured],
) -> None:
    """A model without a bf16 pass on the development sets: `auto` keeps f32 on a host where
    bf16 is fastest and passes its own 36 photos, and asking for bf16 is refused."""
    allowed = precisions_passed(NOT_GATED)
    choice = choose_runtime("auto", "auto", "cpu", lambda _: profile, CAPABILITIES, allowed=allowed)
    assert choice.precision == "f32"
    assert "failed the gate on the development sets: openvino/bf16" in choice.reason
    with pytest.raises(DeviceUnavailableError, match="did not pass the quality gate in bf16"):
        choose_runtime("openvino", "bf16", "cpu", lambda _: profile, CAPABILITIES, allowed=allowed)


def test_bf16_keeps_the_high_resolution_blocks_whole_and_in_f32(
    model_path: Path, gate_photos: np.ndarray
) -> None:
    """Each backbone is cut after its last block at 56 px; the two graphs run one after the other
    give what the whole graph gives (here both in f32, which any CPU runs)."""
    core = _core()
    graph = core.read_model(str(model_path))
    cuts = high_resolution_cuts(graph)
    assert cuts == ["/backbones.0/_blocks.2/Add", "/backbones.1/features/features.3/Add"]
    early, late = split_at(graph, cuts)
    assert [tuple(output.get_partial_shape())[2:] for output in early.outputs] == [(56, 56)] * 2
    first = core.compile_model(early, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    second = core.compile_model(late, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    maps = first.create_infer_request().infer({0: gate_photos[:8]})
    found = second.create_infer_request().infer([maps[output] for output in first.outputs])
    whole = make_embedder(REFERENCE, model_path, 2, 8)
    assert np.allclose(found[second.output("features")], whole(gate_photos[:8]), atol=1e-5)
    assert np.allclose(found[second.output("logits")], whole.logits(gate_photos[:8]), atol=1e-3)


@needs_bf16
def test_bf16_runs_the_convolutions_past_56_px_in_bf16(model_path: Path) -> None:
    embedder = OpenVinoEmbedder(str(model_path), 2, 4, "bf16")

    def convolutions(compiled: object) -> set[str]:
        ops = compiled.get_runtime_model().get_ordered_ops()  # type: ignore[attr-defined]
        return {
            op.get_rt_info()["runtimePrecision"].astype(str)
            for op in ops
            if op.get_rt_info()["layerType"].astype(str) == "Convolution"
        }

    assert convolutions(embedder.early) == {"f32"}
    assert convolutions(embedder.compiled) == {"bf16"}


@needs_bf16
def test_embedders_made_again_reuse_their_compiled_blobs(model_path: Path, tmp_path: Path) -> None:
    """A worker measures runtimes and batch sizes with several embedders: each one compiled
    anew had added a 27 MB blob to the cache, until the disk was full."""
    blobs = []
    for threads, batch in [(2, 2), (2, 4), (1, 2), (2, 2)]:
        OpenVinoEmbedder(str(model_path), threads, batch, "bf16", tmp_path / "compiled")
        blobs.append(sorted((tmp_path / "compiled").iterdir()))
    assert len(blobs[0]) == 2  # the f32 blocks and the bf16 rest
    assert all(found == blobs[0] for found in blobs)


@needs_bf16
def test_the_gate_refuses_a_precision_that_fails_it(profile: list[Measured]) -> None:
    """The same measured bf16 descriptors against a gate stricter than bf16 can meet."""
    strict = GateThresholds(median=0.99999, minimum=0.9999)
    with pytest.raises(DeviceUnavailableError, match="fails the quality gate") as refused:
        choose_runtime(
            "openvino", "bf16", "cpu", lambda _: profile, CAPABILITIES, strict, BF16_PASSED
        )
    assert "openvino/bf16" in str(refused.value) and "cosine to f32 min 0.9" in str(refused.value)
    fallback = choose_runtime(
        "auto", "auto", "cpu", lambda _: profile, CAPABILITIES, strict, BF16_PASSED
    )
    assert fallback.precision == "f32"
    assert "refused by the gate: openvino/bf16" in fallback.reason


def test_settings_that_cannot_run_are_refused(profile: list[Measured]) -> None:
    with pytest.raises(DeviceUnavailableError, match="openvino package is not installed"):
        choose_runtime("openvino", "auto", "cpu", lambda _: profile, set())
    with pytest.raises(DeviceUnavailableError, match="ONNX Runtime in f32 only"):
        choose_runtime("openvino", "auto", "cuda", lambda _: profile, CAPABILITIES)
    assert choose_runtime("auto", "auto", "cuda", lambda _: [], CAPABILITIES).label == (
        "onnxruntime/f32"
    )


def _edited(path: Path) -> bytes:
    """A mild copy: 90% centre crop, 60% size, JPEG quality 70."""
    with Image.open(path) as image:
        rgb = image.convert("RGB")
    width, height = rgb.size
    box = (width // 20, height // 20, width - width // 20, height - height // 20)
    copy = rgb.crop(box).resize((int(width * 0.6), int(height * 0.6)))
    out = io.BytesIO()
    copy.save(out, "JPEG", quality=70)
    return out.getvalue()


def test_every_runtime_gives_the_same_top1_on_the_demo_photos(
    model_path: Path, photos: list[Path]
) -> None:
    size = SPEC.input_size
    gallery = np.stack([load_image(str(path), size, 10**9) for path in photos])
    queries = np.stack([load_image(_edited(path), size, 10**9) for path in photos])
    answers = {}
    for candidate in host_candidates(CAPABILITIES):
        embedder = make_embedder(candidate, model_path, 2, 4)
        stored, asked = embedder(gallery), embedder(queries)
        stored /= np.linalg.norm(stored, axis=1, keepdims=True)
        asked /= np.linalg.norm(asked, axis=1, keepdims=True)
        answers[candidate.label] = (asked @ stored.T).argmax(axis=1).tolist()
    reference = answers[REFERENCE.label]
    assert reference == list(range(len(photos))), "every copy finds its original"
    assert all(top1 == reference for top1 in answers.values()), answers


def test_the_profile_is_measured_once_per_host(
    model_path: Path, cache_dir: Path, tmp_path: Path
) -> None:
    """A worker's later starts read the cached profile instead of measuring again."""
    (tmp_path / model_path.name).symlink_to(model_path)
    asked: list[int] = []

    def photos() -> Path:
        asked.append(1)
        return gate_images(SPEC, cache_dir)

    candidates = host_candidates(CAPABILITIES)
    first = host_profile(tmp_path / model_path.name, photos, 2, 4, candidates)
    again = host_profile(tmp_path / model_path.name, photos, 2, 4, candidates)
    assert first == again and asked == [1]
    assert len(list((tmp_path / "runtime-profiles").glob("*.json"))) == 1


def test_the_pipeline_runs_what_the_settings_name(model_path: Path) -> None:
    chosen = EmbeddingPipeline(Settings(runtime="onnxruntime", precision="f32"), model_path)
    assert chosen.runtime.label == "onnxruntime/f32"
    chosen_here = EmbeddingPipeline(Settings(), model_path).runtime.precision
    assert chosen_here in precisions_passed(DEFAULT_MODEL)
    if "BF16" not in CAPABILITIES:
        assert chosen_here == "f32"
    with pytest.raises(DeviceUnavailableError, match="cannot run on this host"):
        EmbeddingPipeline(Settings(runtime="onnxruntime", precision="bf16"), model_path)


def test_a_host_that_cannot_write_its_cache_still_chooses(
    model_path: Path, cache_dir: Path, tmp_path: Path
) -> None:
    """A read-only image: the profile is measured for the process instead of cached."""
    (tmp_path / model_path.name).symlink_to(model_path)
    (tmp_path / "runtime-profiles").write_text("a file where the folder would go")
    rows = host_profile(
        tmp_path / model_path.name,
        lambda: gate_images(SPEC, cache_dir),
        2,
        4,
        host_candidates(CAPABILITIES),
    )
    assert [row.candidate for row in rows] == host_candidates(CAPABILITIES)


def test_auto_batch_is_the_fastest_measured_and_measured_once(
    model_path: Path, cache_dir: Path, tmp_path: Path
) -> None:
    """RIS_MODEL_BATCH_SIZE=0 runs the size the chosen runtime was fastest at on this host;
    later starts read it from the cache."""
    (tmp_path / model_path.name).symlink_to(model_path)
    asked: list[int] = []

    def photos() -> Path:
        asked.append(1)
        return gate_images(SPEC, cache_dir)

    choice = Candidate("onnxruntime", "f32")
    size, speeds = fastest_batch(choice, tmp_path / model_path.name, photos, 2)
    assert sorted(speeds) == list(BATCH_SIZES) and all(speed > 0 for speed in speeds.values())
    assert speeds[size] == max(speeds.values())
    assert fastest_batch(choice, tmp_path / model_path.name, photos, 2) == (size, speeds)
    assert asked == [1]


def test_batch_speeds_time_each_size_on_the_same_embedder(
    model_path: Path, gate_photos: np.ndarray
) -> None:
    embedder = make_embedder(REFERENCE, model_path, 1, 4)
    calls: list[int] = []
    infer = embedder._infer

    def counted(output: str, chunk: np.ndarray) -> np.ndarray:
        calls.append(len(chunk))
        return infer(output, chunk)

    embedder._infer = counted  # type: ignore[method-assign]
    speeds = batch_speeds(embedder, gate_photos[:8], (1, 8))
    assert set(speeds) == {1, 8}
    # Three passes over the images at each size in turn.
    assert calls == ([1] * 8 + [8]) * 3


def test_the_pipeline_runs_the_batch_size_set_or_the_fastest(model_path: Path) -> None:
    assert EmbeddingPipeline(Settings(model_batch_size=3), model_path).model_batch_size == 3
    assert EmbeddingPipeline(Settings(), model_path).model_batch_size in BATCH_SIZES


def test_every_runtime_gives_the_same_descriptors_at_every_batch_size(
    model_path: Path, gate_photos: np.ndarray
) -> None:
    """What auto picks changes speed, never the vectors (the gate measured them at batch 4)."""
    for candidate in host_candidates(CAPABILITIES):
        at_four = make_embedder(candidate, model_path, 1, 4)(gate_photos[:8])
        for size in (1, 2, 8):
            other = make_embedder(candidate, model_path, 1, size)(gate_photos[:8])
            assert cosine_rows(at_four, other).min() > 0.99999, (candidate, size)
