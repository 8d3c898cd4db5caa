"""The embedding model on OpenVINO (CPU), reading the same ONNX file, in f32 or bf16."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ris.embedding.session import Embedder
from ris.errors import DeviceUnavailableError

log = logging.getLogger(__name__)


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


class OpenVinoEmbedder(Embedder):
    """One compiled model on the CPU plugin, run in chunks of `model_batch_size` images."""

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
        self.compiled = core.compile_model(model_path, "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.model_batch_size = model_batch_size
        log.info("loaded %s on OpenVINO %s, %d threads", model_path, precision, threads)

    def _infer(self, output: str, chunk: np.ndarray) -> np.ndarray:
        # The request reuses its output buffer: copy before the next chunk overwrites it.
        return self.request.infer({0: chunk})[self.compiled.output(output)].copy()
