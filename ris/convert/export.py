"""Export a model recipe with its shipped PyTorch weights to an ONNX graph (the only torch user)."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from ris.convert.weights import weights_file
from ris.embedding.models import (
    BACKBONES,
    FEATURES_OUTPUT,
    INPUT_NAME,
    LOGITS_OUTPUT,
    Backbone,
    ModelSpec,
    gate_images,
    get_model_spec,
    onnx_model_path,
)
from ris.errors import ModelUnavailableError

log = logging.getLogger(__name__)

# Generalized-mean pooling exponent: 3 is the usual choice in image retrieval.
GEM_POWER = 3.0


def _import_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ModelUnavailableError(
            "the converted model is not cached and PyTorch is not installed to convert it: "
            "pip install 'reverse-image-search[convert]' (one-time step)"
        ) from None
    return torch


def backbone_module(backbone: Backbone, cache_dir: Path) -> Any:
    """One backbone with its shipped weights as a module: uint8 NHWC in, feature map out.

    It also carries the backbone's ImageNet `classifier` (over average-pooled features).
    """
    torch = _import_torch()
    weights = str(weights_file(backbone.weights, cache_dir))
    if backbone.name == "mobilenet-v2":
        from ris.convert.mobilenet_v2 import load_mobilenet_v2

        network = load_mobilenet_v2(weights)
        extract, classifier = network.features, network.classifier[1]
    else:
        from efficientnet_lite_pytorch import EfficientNet

        # Loaded as shipped: set_swish() would replace ReLU6 and wreck the pretrained weights.
        # It print()s: keep stdout clean for the CLIs' --json output.
        with contextlib.redirect_stdout(io.StringIO()):
            network = EfficientNet.from_pretrained(backbone.name, weights_path=weights).eval()
        extract, classifier = network.extract_features, network._fc

    class FeatureMap(torch.nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            # A submodule, so its weights are parameters rather than traced constants.
            self.network, self.classifier = network, classifier
            self.register_buffer("mean", torch.tensor(backbone.mean).view(1, 3, 1, 1))
            self.register_buffer("scale", 1.0 / torch.tensor(backbone.std).view(1, 3, 1, 1))

        def forward(self, images: Any) -> Any:
            return extract((images.permute(0, 3, 1, 2).float() - self.mean) * self.scale)

    return FeatureMap().eval()


def gem(feature_map: Any) -> Any:
    """Generalized-mean pooling over the spatial axes of an (N, C, H, W) map."""
    powered = feature_map.clamp(min=1e-6).pow(GEM_POWER).mean(dim=(2, 3))
    return powered.pow(1.0 / GEM_POWER)


def build_reference_model(
    spec: ModelSpec, cache_dir: Path, projection: tuple[Any, Any] | None = None
) -> Any:
    """The PyTorch module the ONNX graph is exported from: uint8 NHWC in, (features, logits) out.

    Normalisation, the NHWC -> NCHW transpose and the pooling live inside the graph, so workers
    hand the model raw decoded pixels with no float copy of their own. The logits (the first
    backbone's, from average pooling as its classifier was trained) prove the weights are real.
    A `projection` (mean, matrix) maps the unit descriptor to `spec.projection` dimensions.
    """
    torch = _import_torch()
    modules = [backbone_module(BACKBONES[name], cache_dir) for name in spec.backbones]

    class FeaturesAndLogits(torch.nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.backbones = torch.nn.ModuleList(modules)
            self.projected = projection is not None
            if projection is not None:
                self.register_buffer("centre", torch.from_numpy(projection[0]))
                self.register_buffer("projection", torch.from_numpy(projection[1]))

        def forward(self, images: Any) -> tuple[Any, Any]:
            descriptor, logits = self.descriptor(images)
            if self.projected:
                unit = torch.nn.functional.normalize(descriptor, dim=1)
                descriptor = (unit - self.centre) @ self.projection
            return descriptor, logits

        def descriptor(self, images: Any) -> tuple[Any, Any]:
            descriptors, logits = [], None
            for backbone in self.backbones:
                feature_map = backbone(images)
                if logits is None:
                    logits = backbone.classifier(feature_map.mean(dim=(2, 3)))
                descriptors.append(
                    gem(feature_map) if spec.pooling == "gem" else feature_map.mean(dim=(2, 3))
                )
            if len(descriptors) == 1:
                return descriptors[0], logits
            # Each backbone weighs the same in the concatenation.
            normalised = [torch.nn.functional.normalize(d, dim=1) for d in descriptors]
            return torch.cat(normalised, dim=1), logits

    return FeaturesAndLogits().eval()


def export_module(
    module: Any, size: int, destination: Path, outputs: list[str], spatial: bool = False
) -> None:
    """Export `module` (uint8 NHWC images in) to `destination` atomically: concurrent workers
    may race. The batch axis is dynamic, and the image and map sides too when `spatial`."""
    torch = _import_torch()
    sample = torch.zeros((2, size, size, 3), dtype=torch.uint8)
    axes = {INPUT_NAME: {0: "batch", 1: "height", 2: "width"} if spatial else {0: "batch"}}
    axes |= {
        name: {0: "batch", 2: "rows", 3: "columns"} if spatial else {0: "batch"} for name in outputs
    }
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=destination.parent, suffix=".onnx.tmp")
    os.close(handle)
    # The exporter warns and chatters: keep stdout clean for --json output.
    with contextlib.redirect_stdout(io.StringIO()) as chatter, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with torch.no_grad():
                torch.onnx.export(
                    module,
                    (sample,),
                    temporary,
                    input_names=[INPUT_NAME],
                    output_names=outputs,
                    dynamic_axes=axes,
                    opset_version=17,
                    dynamo=False,
                )
            # mkstemp made it private (0600); other users, like a container's service user,
            # read it.
            os.chmod(temporary, 0o644)
            os.replace(temporary, destination)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    log.debug("conversion output: %s", chatter.getvalue().strip())


def _learned_projection(spec: ModelSpec, cache_dir: Path) -> tuple[Any, Any]:
    """Converts the unprojected recipe, then learns the projection on its descriptors."""
    from ris.convert.projection import learn_projection
    from ris.embedding.session import OnnxEmbedder, l2_normalise

    unprojected = dataclasses.replace(spec, projection=0)
    embedder = OnnxEmbedder(str(_converted(unprojected, cache_dir)), 0, 16, "cpu")
    log.info("learning the %d-d projection of %s (one-time step)", spec.projection, spec.name)
    return learn_projection(
        lambda images: l2_normalise(embedder(images)),
        cache_dir,
        spec.input_size,
        spec.projection,
        spec.projection_shrinkage,
    )


def _converted(spec: ModelSpec, cache_dir: Path) -> Path:
    path = onnx_model_path(spec, cache_dir)
    if not path.exists():
        projection = _learned_projection(spec, cache_dir) if spec.projection else None
        log.info("converting %s to ONNX at %s (one-time step)", spec.name, path)
        model = build_reference_model(spec, cache_dir, projection)
        export_module(model, spec.input_size, path, [FEATURES_OUTPUT, LOGITS_OUTPUT])
    return path


def ensure_onnx_model(model_name: str, cache_dir: Path) -> Path:
    """The cached ONNX file for `model_name`, converting the shipped weights on first use."""
    spec = get_model_spec(model_name)
    path = _converted(spec, cache_dir)
    gate_images(spec, cache_dir)
    return path
