"""The embedding model on OpenVINO (CPU), reading the same ONNX file, in f32 or bf16 (its
high-resolution blocks kept in f32)."""

from __future__ import annotations

import functools
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from ris.embedding.session import Embedder
from ris.errors import DeviceUnavailableError

log = logging.getLogger(__name__)

# In bf16, every block whose output is at least this fraction of the input's side (112 and 56 px
# of 224) still runs in f32. With bf16 there, smooth gradients lost the most: the default model's
# descriptors fell to cosine 0.94-0.95 to f32 on wallpaper tiles; with those blocks in f32 the
# lowest is 0.998 on the same images (docs/BENCHMARKS.md), at 0.6 of f32's time rather than 0.54.
F32_SIDE_FRACTION = 1 / 4
# A backbone's blocks as the exported graph names them: EfficientNet-Lite's `_blocks.N`,
# MobileNetV2's `features.N`.
_BLOCK = re.compile(r"^/backbones\.(\d+)/(?:_blocks\.|features/features\.)(\d+)/")


@functools.cache
def _core() -> Any:
    """The process's one OpenVINO runtime object (making one costs about 0.1 s); None when the
    openvino package is not installed."""
    try:
        import openvino as ov
    except ImportError:
        return None
    return ov.Core()


def openvino_capabilities() -> set[str]:
    """What this host's CPU plugin can run (`FP32`, `BF16`, `INT8`, ...); empty without OpenVINO."""
    core = _core()
    return set(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")) if core else set()


def openvino_cpu() -> str:
    """The CPU as OpenVINO names it, and OpenVINO's version."""
    import openvino

    return f"{_core().get_property('CPU', 'FULL_DEVICE_NAME')}; openvino {openvino.__version__}"


def high_resolution_cuts(model: Any) -> list[str]:
    """Per backbone, the name of the last block output at least F32_SIDE_FRACTION of the input's
    side: the graph up to these runs in f32 when the rest runs in bf16. Empty when the graph's
    blocks are not named as the converter names them."""
    side = model.input(0).get_partial_shape()[1].get_length()  # NHWC images
    last: dict[tuple[str, int], Any] = {}  # (backbone, block) -> its last node with a 4-d output
    for node in model.get_ordered_ops():
        match = _BLOCK.match(node.get_friendly_name())
        shape = node.get_output_partial_shape(0) if node.get_output_size() == 1 else None
        if match and node.get_type_name() not in ("Constant", "ShapeOf") and shape is not None:
            if shape.rank.is_static and shape.rank.get_length() == 4 and shape[2].is_static:
                last[(match.group(1), int(match.group(2)))] = node
    cuts: dict[str, tuple[int, str]] = {}
    for (backbone, block), node in last.items():
        if node.get_output_partial_shape(0)[2].get_length() >= side * F32_SIDE_FRACTION:
            if block >= cuts.get(backbone, (-1, ""))[0]:
                cuts[backbone] = (block, node.get_friendly_name())
    return [cuts[backbone][1] for backbone in sorted(cuts)]


def split_at(graph: Any, cuts: list[str]) -> tuple[Any, Any]:
    """(the graph from its images to the `cuts`, the graph from the `cuts` to its outputs);
    `graph` itself is left whole."""
    import openvino as ov

    nodes = {node.get_friendly_name(): node for node in graph.get_ordered_ops()}
    early = ov.Model([nodes[name].output(0) for name in cuts], graph.get_parameters())
    late_graph = graph.clone()
    nodes = {node.get_friendly_name(): node for node in late_graph.get_ordered_ops()}
    inputs = []
    for name in cuts:
        output = nodes[name].output(0)
        cut = ov.opset13.parameter(output.get_partial_shape(), output.get_element_type(), name)
        for consumer in list(output.get_target_inputs()):
            consumer.replace_source_output(cut.output(0))
        inputs.append(cut)
    return early, ov.Model(late_graph.get_results(), inputs)


@functools.cache
def _split_graphs(model_path: str) -> tuple[Any, Any, list[str]]:
    """(early graph, late graph, cuts) of the model split at `high_resolution_cuts`, made once
    per process. Compiling the same graph objects again finds their blobs in CACHE_DIR; a graph
    split anew hashes differently (OpenVINO names new nodes by a process-wide counter), so
    every embedder made in a process added a 27 MB blob: 58 GB in a day of tests and benchmarks
    here, until the disk was full."""
    graph = _core().read_model(model_path)
    cuts = high_resolution_cuts(graph)
    if not cuts:
        return None, None, []
    early, late = split_at(graph, cuts)
    return early, late, cuts


class OpenVinoEmbedder(Embedder):
    """The model compiled on the CPU plugin, run in chunks of `model_batch_size` images; in bf16
    as two compiled graphs, the high-resolution blocks in f32 and the rest in bf16."""

    def __init__(
        self,
        model_path: str,
        threads: int,
        model_batch_size: int,
        precision: str = "f32",
        compiled_cache: Path | None = None,
    ):
        core = _core()
        if core is None:
            raise DeviceUnavailableError(
                "RIS_RUNTIME=openvino needs the openvino package (pip install openvino)"
            )
        config: dict[str, Any] = {
            "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY",
            # OpenVINO pins its threads to cores by default; two worker processes on one host
            # would then share the same cores (half the throughput measured here).
            "ENABLE_CPU_PINNING": False,
            "INFERENCE_PRECISION_HINT": precision,
        }
        if compiled_cache is not None:
            # A worker's second start loads the compiled blob instead of compiling the graph.
            config["CACHE_DIR"] = str(compiled_cache)
        early, late, cuts = _split_graphs(model_path) if precision == "bf16" else (None, None, [])
        self.early: Any = None
        if cuts:
            self.early = core.compile_model(
                early, "CPU", {**config, "INFERENCE_PRECISION_HINT": "f32"}
            )
            self.early_request = self.early.create_infer_request()
            self.compiled = core.compile_model(late, "CPU", config)
        else:
            self.compiled = core.compile_model(model_path, "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.model_batch_size = model_batch_size
        kept = f", f32 up to {', '.join(cuts)}" if cuts else ""
        log.info("loaded %s on OpenVINO %s%s, %d threads", model_path, precision, kept, threads)

    def _infer(self, output: str, chunk: np.ndarray) -> np.ndarray:
        if self.early is None:
            inputs: dict[int, Any] = {0: chunk}
        else:
            found = self.early_request.infer({0: chunk})
            inputs = {number: found[out] for number, out in enumerate(self.early.outputs)}
        # The request reuses its output buffer: copy before the next chunk overwrites it.
        return self.request.infer(inputs)[self.compiled.output(output)].copy()
