"""The towhee embedding pipeline: decode -> embed -> L2-normalise, one call per batch of paths."""

from __future__ import annotations

import functools
import logging
import queue
import threading
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import numpy as np

from ris.embedding.imaging import ImageSource, load_image
from ris.embedding.models import gate_images, get_model_spec, model_file
from ris.embedding.runtime import (
    ALL_PRECISIONS,
    DEFAULT_BATCH,
    Candidate,
    RuntimeChoice,
    choose_runtime,
    fastest_batch,
    host_profile,
    make_embedder,
    precisions_passed,
)
from ris.embedding.session import Embedder, l2_normalise
from ris.errors import ImageDecodeError
from ris.files.identity import is_url
from ris.files.remote import FetchOptions, Remote
from ris.settings import Settings

with warnings.catch_warnings():
    # towhee 1.1.3 imports the deprecated pkg_resources; the warning is noise for users.
    warnings.simplefilter("ignore", UserWarning)
    import towhee
    from towhee import ops, pipe

log = logging.getLogger(__name__)

Decoding = list[tuple[ImageSource, "Future[np.ndarray | str]"]]


S = TypeVar("S", str, bytes)


@dataclass
class EmbeddedBatch(Generic[S]):
    """The vectors of the images that decoded, and the reason for each one that did not."""

    paths: list[S]
    vectors: np.ndarray
    failures: dict[S, str] = field(default_factory=dict)


class PathEmbedder(Protocol):
    """What a worker needs: image paths or URLs in, vectors of those that decoded and failures
    out."""

    dim: int

    def __call__(self, sources: Sequence[str]) -> EmbeddedBatch[str]: ...


@towhee.register(name="ris/decode_images")
class DecodeImages:
    """Starts decoding a batch on a thread pool and returns at once, one future per file.

    The model consumes the futures in order, so later images decode while earlier ones are
    embedded. A bad file resolves to its failure reason, never to an exception.
    """

    def __init__(
        self,
        size: int,
        max_pixels: int,
        threads: int,
        frame_removal: bool = False,
        fetch: FetchOptions | None = None,
    ):
        self.size = size
        self.max_pixels = max_pixels
        self.frame_removal = frame_removal
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="decode")
        self.remote = Remote(fetch)

    def _load(self, source: ImageSource, fetching: Future[bytes] | None) -> np.ndarray | str:
        try:
            data = fetching.result() if fetching is not None else source
            return load_image(data, self.size, self.max_pixels, self.frame_removal)
        except ImageDecodeError as error:
            return str(error)

    def __call__(self, sources: list[ImageSource]) -> Decoding:
        # URLs are all requested at once (RIS_FETCH_THREADS in flight) and decoded from memory
        # as they arrive; files are read by the decoding threads themselves.
        fetching: dict[ImageSource, Future[bytes]] = {
            source: self.remote.pool().submit(self.remote.fetch, source)
            for source in sources
            if isinstance(source, str) and is_url(source)
        }
        return [
            (source, self.pool.submit(self._load, source, fetching.get(source)))
            for source in sources
        ]


@towhee.register(name="ris/embed_images")
class EmbedImages:
    """Runs the model on each chunk of decoded images as soon as that chunk is ready.

    A batch of one chunk runs on one session with all the inference threads (lowest latency).
    A batch of several runs its chunks concurrently on one single-threaded ONNX Runtime session
    per thread ("lanes", made on first use): on a CPU, two sessions of one thread each embedded
    15-30% more images per second than one session of two threads (docs/BENCHMARKS.md).
    """

    def __init__(
        self, model_path: str, threads: int, model_batch_size: int, device: str, choice: Candidate
    ):
        self._make = functools.partial(
            make_embedder,
            choice,
            Path(model_path),
            model_batch_size=model_batch_size,
            device=device,
        )
        self.embedder = self._make(threads=threads)
        self.chunk = model_batch_size
        # ONNX Runtime only: two OpenVINO compiled models inferring at once hung a forked Celery
        # worker here (tests/e2e/test_faults.py, one run in three); OpenVINO keeps one model.
        self.lane_count = threads if device == "cpu" and choice.runtime == "onnxruntime" else 1
        self._lanes: queue.SimpleQueue[Embedder] | None = None
        self._lane_pool: ThreadPoolExecutor | None = None
        self._making_lanes = threading.Lock()

    def _run_on_a_lane(self, images: np.ndarray) -> np.ndarray:
        assert self._lanes is not None
        embedder = self._lanes.get()
        try:
            return embedder(images)
        finally:
            self._lanes.put(embedder)

    def _submit(self, images: np.ndarray) -> Future[np.ndarray]:
        with self._making_lanes:
            if self._lane_pool is None:
                self._lanes = queue.SimpleQueue()
                for _ in range(self.lane_count):
                    self._lanes.put(self._make(threads=1))
                self._lane_pool = ThreadPoolExecutor(
                    self.lane_count, thread_name_prefix="inference"
                )
        return self._lane_pool.submit(self._run_on_a_lane, images)

    def __call__(
        self, decoding: Decoding
    ) -> tuple[list[ImageSource], np.ndarray, dict[ImageSource, str]]:
        kept: list[ImageSource] = []
        parts: list[np.ndarray | Future[np.ndarray]] = []
        failures: dict[ImageSource, str] = {}
        in_lanes = self.lane_count > 1 and len(decoding) > self.chunk
        for start in range(0, len(decoding), self.chunk):
            images = []
            for path, future in decoding[start : start + self.chunk]:
                result = future.result()
                if isinstance(result, str):
                    failures[path] = result
                else:
                    images.append(result)
                    kept.append(path)
            if images:
                chunk = np.stack(images)
                parts.append(self._submit(chunk) if in_lanes else self.embedder(chunk))
        features = [part.result() if isinstance(part, Future) else part for part in parts]
        stacked = np.concatenate(features) if features else np.zeros((0, 0), np.float32)
        return kept, stacked, failures


@towhee.register(name="ris/l2_normalise")
def normalise_vectors(vectors: np.ndarray) -> np.ndarray:
    return l2_normalise(vectors).astype(np.float32, copy=False)


class EmbeddingPipeline:
    """Paths, URLs (or an upload's bytes) in, normalised vectors out; built once per process."""

    def __init__(
        self, settings: Settings, model_path: Path | None = None, max_fetch_bytes: int | None = None
    ):
        """`max_fetch_bytes` bounds a query image read by URL (default RIS_FETCH_MAX_BYTES)."""
        spec = get_model_spec(settings.model)
        self.dim = spec.dim
        self.model_name = spec.name
        model = model_path or model_file(spec, settings.cache_dir)
        threads = settings.resolved_inference_threads
        photos = functools.partial(gate_images, spec, settings.cache_dir)
        self.runtime: RuntimeChoice = choose_runtime(
            settings.runtime,
            settings.precision,
            settings.device,
            lambda candidates: host_profile(
                model, photos, threads, settings.model_batch_size or DEFAULT_BATCH, candidates
            ),
            allowed=ALL_PRECISIONS if settings.ungated_precision else precisions_passed(spec.name),
        )
        log.info("inference on %s: %s", self.runtime.label, self.runtime.reason)
        self.model_batch_size = self._model_batch_size(settings, model, photos, threads)
        self._pipe = (
            pipe.input("paths")
            .map(
                "paths",
                "decoding",
                ops.ris.decode_images(
                    size=spec.input_size,
                    max_pixels=settings.max_pixels,
                    threads=settings.decode_threads,
                    frame_removal=spec.frame_removal,
                    fetch=replace(
                        settings.fetch_options,
                        max_bytes=max_fetch_bytes or settings.fetch_max_bytes,
                    ),
                ),
            )
            .map(
                "decoding",
                ("kept", "features", "failures"),
                ops.ris.embed_images(
                    model_path=str(model),
                    threads=threads,
                    model_batch_size=self.model_batch_size,
                    device=settings.device,
                    choice=Candidate(self.runtime.runtime, self.runtime.precision),
                ),
            )
            .map("features", "vectors", ops.ris.l2_normalise())
            .output("kept", "vectors", "failures")
        )

    def _model_batch_size(
        self, settings: Settings, model: Path, photos: Callable[[], Path], threads: int
    ) -> int:
        """RIS_MODEL_BATCH_SIZE, or (0, auto) the size the chosen runtime ran fastest at here."""
        if settings.model_batch_size:
            return settings.model_batch_size
        if settings.device != "cpu":
            log.info("model batch %d: auto on %s", DEFAULT_BATCH, settings.device)
            return DEFAULT_BATCH
        size, speeds = fastest_batch(self.runtime, model, photos, threads)
        measured = ", ".join(f"{batch}: {speed:.0f}" for batch, speed in speeds.items())
        log.info("model batch %d: the fastest here (images/s at each: %s)", size, measured)
        return size

    def __call__(self, sources: Sequence[S]) -> EmbeddedBatch[S]:
        kept, vectors, failures = self._pipe(list(sources)).get()
        if not kept:
            vectors = np.zeros((0, self.dim), dtype=np.float32)
        return EmbeddedBatch(paths=kept, vectors=vectors, failures=failures)


def picture_embedder(settings: Settings) -> Callable[[list[bytes]], np.ndarray]:
    """The vectors of pictures given as bytes (of those that decode, in order), by a pipeline
    built on the first call: a caller that never embeds never loads the model."""
    built = functools.cache(
        lambda: EmbeddingPipeline(settings, max_fetch_bytes=settings.max_upload_bytes)
    )
    return lambda pictures: built()(pictures).vectors
