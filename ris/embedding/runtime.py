"""The inference runtime, precision and model batch a host runs: as set, or the fastest allowed.

A precision below f32 is allowed only if its descriptors agree with ONNX Runtime f32 on real
photos (the quality gate). `auto` measures, once per host, model and thread count, every runtime
and precision the host supports, and keeps the fastest that passed; the profile is cached next
to the converted model so later starts only read it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ris.embedding.openvino_session import OpenVinoEmbedder, openvino_capabilities, openvino_cpu
from ris.embedding.session import Embedder, OnnxEmbedder
from ris.errors import DeviceUnavailableError

log = logging.getLogger(__name__)

# Bump when the profile's content or the way it is measured changes.
PROFILE_VERSION = 3


@dataclass(frozen=True)
class GateThresholds:
    """Cosine to ONNX Runtime f32 that a precision's descriptors must keep, per image."""

    median: float = 0.995
    minimum: float = 0.98


GATE = GateThresholds()


@dataclass(frozen=True)
class Candidate:
    runtime: str
    precision: str

    @property
    def label(self) -> str:
        return f"{self.runtime}/{self.precision}"


REFERENCE = Candidate("onnxruntime", "f32")

# Precisions below f32 that passed the quality gate on the development sets (`make
# bench-quality`, bench/precision_gate.py), per model; no other runs below f32, whatever a host
# measures on its 36 photos. bf16 on the default model, its blocks at 112 and 56 px kept in f32
# (ris/embedding/openvino_session.py): cosine to f32 0.9986 at worst and 0.9998 at the median
# over 3,078 images, every `query eval` figure within 0.001. (With every block in bf16, 48 images
# fell below 0.98, down to 0.951: smooth wallpaper tiles.)
DEVELOPMENT_SET_PASSES: dict[str, frozenset[str]] = {
    "lite0-mobilenet-v2-gem-deframe": frozenset({"bf16"}),
}


# Every precision a host may be asked for.
ALL_PRECISIONS = frozenset({"f32", "bf16"})

# Images per inference call that `RIS_MODEL_BATCH_SIZE=0` (auto) chooses from on a CPU, by
# measuring them with the runtime chosen. On this machine's Xeon one thread of OpenVINO bf16 ran
# 132, 134, 121 and 119 images/s at 1, 2, 4 and 8, and two threads 176, 210, 207 and 188.
BATCH_SIZES = (1, 2, 4, 8)
# The batch runtimes are compared at, and what auto runs on a GPU (unmeasured: no GPU here).
DEFAULT_BATCH = 4


def precisions_passed(model: str) -> frozenset[str]:
    """Precisions `model` may run in: f32, and any that passed on the development sets."""
    return frozenset({"f32"}) | DEVELOPMENT_SET_PASSES.get(model, frozenset())


@dataclass(frozen=True)
class Measured:
    """One candidate on this host: images/s, and its descriptors' cosine to the reference."""

    runtime: str
    precision: str
    ips: float
    cos_min: float
    cos_median: float

    @property
    def candidate(self) -> Candidate:
        return Candidate(self.runtime, self.precision)

    def passes(self, gate: GateThresholds) -> bool:
        return self.cos_median >= gate.median and self.cos_min >= gate.minimum


@dataclass(frozen=True)
class RuntimeChoice:
    runtime: str
    precision: str
    reason: str

    @property
    def label(self) -> str:
        return f"{self.runtime}/{self.precision}"


def host_candidates(capabilities: set[str]) -> list[Candidate]:
    """Every runtime x precision this CPU can run: OpenVINO only where it is installed, bf16
    only where the CPU has it."""
    candidates = [REFERENCE]
    if "FP32" in capabilities:
        candidates.append(Candidate("openvino", "f32"))
    if "BF16" in capabilities:
        candidates.append(Candidate("openvino", "bf16"))
    return candidates


def make_embedder(
    candidate: Candidate | RuntimeChoice,
    model_path: Path,
    threads: int,
    model_batch_size: int,
    device: str = "cpu",
) -> Embedder:
    if candidate.runtime == "onnxruntime":
        return OnnxEmbedder(str(model_path), threads, model_batch_size, device)
    return OpenVinoEmbedder(
        str(model_path),
        threads,
        model_batch_size,
        candidate.precision,
        # Compiled blobs are cached where the host may write (a read-only image just compiles).
        compiled_cache=(
            model_path.parent / "openvino-cache" if os.access(model_path.parent, os.W_OK) else None
        ),
    )


def cosine_rows(reference: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Cosine of each row of `other` to the same row of `reference`."""
    dots = (reference * other).sum(axis=1)
    norms = np.linalg.norm(reference, axis=1) * np.linalg.norm(other, axis=1)
    return dots / np.maximum(norms, 1e-12)


def _images_per_second(embedder: Embedder, images: np.ndarray) -> float:
    embedder(images[: embedder.model_batch_size])  # warm-up
    best = 0.0
    for _ in range(2):
        start = time.perf_counter()
        embedder(images)
        best = max(best, len(images) / (time.perf_counter() - start))
    return best


def measure(
    candidates: list[Candidate],
    model_path: Path,
    images: np.ndarray,
    threads: int,
    model_batch_size: int,
) -> list[Measured]:
    """Each candidate's speed and agreement with ONNX Runtime f32 on `images`, side by side."""
    reference = make_embedder(REFERENCE, model_path, threads, model_batch_size)
    expected = reference(images)
    rows = []
    for candidate in candidates:
        embedder = (
            reference
            if candidate == REFERENCE
            else make_embedder(candidate, model_path, threads, model_batch_size)
        )
        cosines = cosine_rows(expected, embedder(images))
        rows.append(
            Measured(
                candidate.runtime,
                candidate.precision,
                round(_images_per_second(embedder, images), 1),
                float(cosines.min()),
                float(np.median(cosines)),
            )
        )
    return rows


def _host_key(
    threads: int, batch: int | list[int], candidates: list[Candidate]
) -> dict[str, object]:
    """What a profile depends on: a change in any of these measures again."""
    import onnxruntime

    key: dict[str, object] = {
        "profile": PROFILE_VERSION,
        "threads": threads,
        "batch": batch,
        "candidates": [candidate.label for candidate in candidates],
        "onnxruntime": onnxruntime.__version__,
        "cpu": platform.processor() or platform.machine(),
    }
    if any(candidate.runtime == "openvino" for candidate in candidates):
        key["cpu"] = openvino_cpu()
    return key


def _cached(kind: str, model_path: Path, host: dict[str, Any], measure: Callable[[], Any]) -> Any:
    """`measure()` once per host (the JSON of its result kept next to the model, keyed by
    `host`); processes started beside the one measuring wait for its file."""
    digest = hashlib.sha256(json.dumps(host, sort_keys=True).encode()).hexdigest()[:16]
    path = model_path.parent / "runtime-profiles" / f"{model_path.stem}-{kind}-{digest}.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(path.with_suffix(".lock"), "w")  # noqa: SIM115 - held for the whole block
    except OSError as error:
        log.warning("cannot cache the %s profile (%s): measuring for this process", kind, error)
        return measure()
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return json.loads(path.read_text())["measured"]
        log.info("profiling %s on this host (once): %s", kind, path.name)
        measured = measure()
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"host": host, "measured": measured}, indent=1))
        temporary.replace(path)
        return measured


def host_profile(
    model_path: Path,
    gate_images: Callable[[], Path],
    threads: int,
    model_batch_size: int,
    candidates: list[Candidate],
) -> list[Measured]:
    """`candidates` measured on this host once and cached."""

    def measure_now() -> list[dict[str, Any]]:
        photos = np.load(gate_images())
        rows = measure(candidates, model_path, photos, threads, model_batch_size)
        return [asdict(row) for row in rows]

    host = _host_key(threads, model_batch_size, candidates)
    return [Measured(**row) for row in _cached("runtimes", model_path, host, measure_now)]


def batch_speeds(
    embedder: Embedder, images: np.ndarray, sizes: tuple[int, ...]
) -> dict[int, float]:
    """Images/s of `embedder` at each batch size, best of three passes taken in turn (the
    first warms each size up)."""
    speeds = dict.fromkeys(sizes, 0.0)
    own = embedder.model_batch_size
    for _ in range(3):
        for size in sizes:
            embedder.model_batch_size = size
            start = time.perf_counter()
            embedder(images)
            speeds[size] = max(speeds[size], len(images) / (time.perf_counter() - start))
    embedder.model_batch_size = own
    return {size: round(speed, 1) for size, speed in speeds.items()}


def fastest_batch(
    choice: Candidate | RuntimeChoice,
    model_path: Path,
    gate_images: Callable[[], Path],
    threads: int,
) -> tuple[int, dict[int, float]]:
    """(the batch size `choice` runs fastest at on this host, images/s at each), measured once
    per host and cached. ONNX Runtime with several threads runs a batch's chunks on one
    single-threaded session per thread (ris/embedding/pipeline.py), so it is measured on one."""
    threads = 1 if choice.runtime == "onnxruntime" else threads

    def measure_now() -> dict[str, float]:
        embedder = make_embedder(choice, model_path, threads, DEFAULT_BATCH)
        speeds = batch_speeds(embedder, np.load(gate_images()), BATCH_SIZES)
        return {str(size): speed for size, speed in speeds.items()}

    host = _host_key(threads, list(BATCH_SIZES), [Candidate(choice.runtime, choice.precision)])
    cached = _cached("batch", model_path, host, measure_now)
    speeds = {int(size): speed for size, speed in cached.items()}
    return max(speeds, key=lambda size: speeds[size]), speeds


def _describe(row: Measured) -> str:
    return (
        f"{row.runtime}/{row.precision} {row.ips:.0f} images/s, cosine to f32 "
        f"min {row.cos_min:.4f} median {row.cos_median:.4f}"
    )


def choose_runtime(
    runtime: str,
    precision: str,
    device: str,
    profile: Callable[[list[Candidate]], list[Measured]],
    capabilities: set[str] | None = None,
    gate: GateThresholds = GATE,
    allowed: frozenset[str] = frozenset({"f32"}),
) -> RuntimeChoice:
    """The runtime and precision to load, and why.

    `runtime`/`precision` are the settings (`auto` or a name); `profile(candidates)` measures
    the candidates left to choose from on this host (cached), and only those. `capabilities`
    default to what OpenVINO reports here; `allowed` are the precisions the model passed the
    gate in on the development sets.
    """
    if device != "cpu":
        if runtime not in ("auto", "onnxruntime") or precision not in ("auto", "f32"):
            raise DeviceUnavailableError(
                f"RIS_DEVICE={device} runs on ONNX Runtime in f32 only "
                f"(RIS_RUNTIME={runtime}, RIS_PRECISION={precision})"
            )
        return RuntimeChoice("onnxruntime", "f32", f"device {device}")
    if capabilities is None:
        capabilities = openvino_capabilities() if runtime != "onnxruntime" else set()
    supported = host_candidates(capabilities)
    if runtime == "openvino" and not capabilities:
        raise DeviceUnavailableError("RIS_RUNTIME=openvino: the openvino package is not installed")
    wanted = [
        candidate
        for candidate in supported
        if runtime in ("auto", candidate.runtime) and precision in ("auto", candidate.precision)
    ]
    if not wanted:
        raise DeviceUnavailableError(
            f"RIS_RUNTIME={runtime} with RIS_PRECISION={precision} cannot run on this host "
            f"(it supports {', '.join(c.label for c in supported)})"
        )
    never = [candidate for candidate in wanted if candidate.precision not in allowed]
    wanted = [candidate for candidate in wanted if candidate.precision in allowed]
    if not wanted:
        raise DeviceUnavailableError(
            f"RIS_PRECISION={precision}: this model did not pass the quality gate in "
            f"{precision} on the development sets (make bench-quality; README: Runtime, "
            "precision and decoding)"
        )
    if wanted == [REFERENCE]:
        return RuntimeChoice("onnxruntime", "f32", "the reference runtime; nothing else asked for")
    rows = {row.candidate: row for row in profile(wanted)}
    passed = [rows[c] for c in wanted if c in rows and rows[c].passes(gate)]
    refused = [rows[c] for c in wanted if c in rows and not rows[c].passes(gate)]
    if not passed:
        raise DeviceUnavailableError(
            f"RIS_PRECISION={precision} fails the quality gate on this host (needs cosine to f32 "
            f">= {gate.median} median, >= {gate.minimum} every image): "
            + "; ".join(_describe(row) for row in refused)
        )
    best = max(passed, key=lambda row: row.ips)
    reason = f"fastest that passed the quality gate: {_describe(best)}"
    others = [_describe(row) for row in passed if row is not best]
    if others:
        reason += "; also passed: " + "; ".join(others)
    if refused:
        reason += "; refused by the gate: " + "; ".join(_describe(row) for row in refused)
    if never:
        reason += "; failed the gate on the development sets: " + ", ".join(
            candidate.label for candidate in never
        )
    return RuntimeChoice(best.runtime, best.precision, reason)
