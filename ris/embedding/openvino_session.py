"""The embedding model on OpenVINO (CPU), reading the same ONNX file, in f32 or bf16."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ris.embedding.session import Embedder
from ris.errors import DeviceUnavailableError

log = logging.getLogger(__name__)


def openvino_capabilities() -> set[str]:
    """What this host's CPU plugin can run (`FP32`, `BF16`, `INT8`, ...); empty without OpenVINO."""
    try:
        import openvino as ov
    except ImportError:
        return set()
    return set(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


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
        try:
            import openvino as ov
        except ImportError:
            raise DeviceUnavailableError(
                "RIS_RUNTIME=openvino needs the openvino package (pip install openvino)"
            ) from None
        core = ov.Core()
        if compiled_cache is not None:
            # A worker's second start loads the compiled blob instead of compiling the graph.
            core.set_property({"CACHE_DIR": str(compiled_cache)})
        config = {
            "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY",
            # OpenVINO pins its threads to cores by default; two worker processes on one host
            # would then share the same cores (half the throughput measured here).
            "ENABLE_CPU_PINNING": False,
            "INFERENCE_PRECISION_HINT": precision,
        }
        self.compiled = core.compile_model(model_path, "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.model_batch_size = model_batch_size
        log.info("loaded %s on OpenVINO %s, %d threads", model_path, precision, threads)

    def _infer(self, output: str, chunk: np.ndarray) -> np.ndarray:
        # The request reuses its output buffer: copy before the next chunk overwrites it.
        return self.request.infer({0: chunk})[self.compiled.output(output)].copy()
