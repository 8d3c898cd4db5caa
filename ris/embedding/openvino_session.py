"""The embedding model on OpenVINO (CPU), reading the same ONNX file, in f32, bf16 or int8."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ris.embedding.models import FEATURES_OUTPUT, LOGITS_OUTPUT
from ris.embedding.session import run_in_chunks
from ris.errors import DeviceUnavailableError

log = logging.getLogger(__name__)

# OpenVINO's names for what RIS_PRECISION calls f32 and bf16 (int8 is a quantized model file,
# whose remaining float layers run at the host's best float precision).
_INFERENCE_PRECISION = {"f32": "f32", "bf16": "bf16"}


def openvino_capabilities() -> set[str]:
    """What this host's CPU plugin can run (`FP32`, `BF16`, `INT8`, ...); empty without OpenVINO."""
    try:
        import openvino as ov
    except ImportError:
        return set()
    return set(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


class OpenVinoEmbedder:
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
            "INFERENCE_PRECISION_HINT": _INFERENCE_PRECISION.get(precision, "f32"),
        }
        if precision == "int8" and "BF16" in openvino_capabilities():
            config["INFERENCE_PRECISION_HINT"] = "bf16"
        self.compiled = core.compile_model(model_path, "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.model_batch_size = model_batch_size
        log.info("loaded %s on OpenVINO %s, %d threads", model_path, precision, threads)

    def _run(self, output: str, images: np.ndarray) -> np.ndarray:
        port = self.compiled.output(output)
        # The request reuses its output buffer: copy before the next chunk overwrites it.
        return run_in_chunks(
            lambda chunk: self.request.infer({0: chunk})[port].copy(),
            images,
            self.model_batch_size,
        )

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Pooled features, shape (N, dim), not normalised."""
        return self._run(FEATURES_OUTPUT, images)

    def logits(self, images: np.ndarray) -> np.ndarray:
        return self._run(LOGITS_OUTPUT, images)
