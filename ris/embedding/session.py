"""The embedding model on ONNX Runtime: uint8 image batches in, pooled feature vectors out."""

from __future__ import annotations

import logging

import numpy as np
import onnxruntime as ort

from ris.embedding.models import FEATURES_OUTPUT, INPUT_NAME, LOGITS_OUTPUT
from ris.errors import DeviceUnavailableError

log = logging.getLogger(__name__)

_PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def execution_providers(device: str) -> list[str]:
    """ONNX Runtime providers for `device`; refuses a device this host cannot run."""
    if device not in _PROVIDERS:
        raise DeviceUnavailableError(f"unknown device {device!r}; use one of {sorted(_PROVIDERS)}")
    wanted = _PROVIDERS[device]
    available = ort.get_available_providers()
    if wanted not in available:
        raise DeviceUnavailableError(
            f"device {device!r} needs ONNX Runtime's {wanted}, which this host lacks "
            f"(available: {', '.join(available)}); install the gpu extra on a GPU host"
        )
    return [wanted] if device == "cpu" else [wanted, "CPUExecutionProvider"]


class Embedder:
    """A loaded model on some runtime: uint8 NHWC batches in, features or logits out, run in
    chunks of `model_batch_size` images. A runtime implements `_infer` on one chunk."""

    model_batch_size: int

    def _infer(self, output: str, chunk: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _run(self, output: str, images: np.ndarray) -> np.ndarray:
        if len(images) == 0:
            return np.zeros((0, 0), dtype=np.float32)
        step = self.model_batch_size
        parts = [
            self._infer(output, images[start : start + step])
            for start in range(0, len(images), step)
        ]
        return np.concatenate(parts).astype(np.float32, copy=False)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Pooled features, shape (N, dim), not normalised."""
        return self._run(FEATURES_OUTPUT, images)

    def logits(self, images: np.ndarray) -> np.ndarray:
        """ImageNet class scores, shape (N, 1000): proves the shipped weights are the real ones."""
        return self._run(LOGITS_OUTPUT, images)


class OnnxEmbedder(Embedder):
    """One inference session, run in chunks of `model_batch_size` images."""

    def __init__(
        self,
        model_path: str,
        threads: int,
        model_batch_size: int,
        device: str = "cpu",
        spinning: bool = False,
    ):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle inference threads busy-wait by default; in a worker they share the cores with the
        # decode threads, and spinning starved those (about 135 -> 175 images/s measured here).
        options.add_session_config_entry(
            "session.intra_op.allow_spinning", "1" if spinning else "0"
        )
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            model_path, sess_options=options, providers=execution_providers(device)
        )
        # onnxruntime-gpu lists CUDA as available even on a host where it cannot load it (no GPU
        # visible, CUDA or cuDNN missing), and then quietly runs on the CPU.
        if _PROVIDERS[device] not in self.session.get_providers():
            raise DeviceUnavailableError(
                f"device {device!r}: ONNX Runtime could not start {_PROVIDERS[device]} on this "
                "host (no GPU visible, or CUDA/cuDNN libraries missing; its log says which)"
            )
        self.model_batch_size = model_batch_size
        log.info("loaded %s on %s, %d threads", model_path, device, threads)

    def _infer(self, output: str, chunk: np.ndarray) -> np.ndarray:
        return self.session.run([output], {INPUT_NAME: chunk})[0]


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
