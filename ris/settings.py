"""The one settings object, built from `RIS_*` environment variables when asked for."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ris.embedding.models import DEFAULT_MODEL
from ris.errors import SettingsError
from ris.files.identity import is_url, normalise_path
from ris.files.remote import FetchOptions


def _default_cache_dir() -> Path:
    return Path(os.path.expanduser("~/.cache/ris"))


class Settings(BaseSettings):
    """Every knob of the product. Each field is read from `RIS_<FIELD NAME IN CAPITALS>`."""

    # An empty variable means the default: compose files pass every setting through as
    # `${RIS_X:-}`, which is empty when the operator did not set it.
    model_config = SettingsConfigDict(
        env_prefix="RIS_", frozen=True, extra="ignore", env_ignore_empty=True
    )

    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Redis URL: Celery broker and job bookkeeping (credentials go in the URL).",
    )
    milvus_uri: str = Field(
        "http://127.0.0.1:19530",
        description="Milvus URI: a `.db` path (embedded Milvus Lite, one process only) or "
        "`http://host:port` (Milvus Lite server, Milvus standalone or cluster).",
    )
    milvus_token: str = Field("", description="Milvus token (`user:password`), empty for none.")
    collection: str = Field(
        "",
        description="Milvus collection holding the vectors; empty means `images_<model>` "
        "(each model has its own). Each job names its collection; a worker's setting applies "
        "only to batches that name none.",
    )
    index_type: Literal["auto", "flat", "hnsw", "ivf_sq8", "ivf_flat"] = Field(
        "auto",
        description="Vector index of a new collection: `flat` (exact), `hnsw` (a graph), "
        "`ivf_sq8` (lists of 8-bit codes) or `ivf_flat`; `auto` is `flat` on Milvus Lite, "
        "`hnsw` on a Milvus server. A collection keeps the index it was built with.",
    )
    model: str = Field(
        DEFAULT_MODEL, description="Embedding model (see the Quality section for the choices)."
    )
    device: str = Field("cpu", description="Inference device: `cpu` or `cuda`.")
    runtime: Literal["auto", "onnxruntime", "openvino"] = Field(
        "auto",
        description="Inference runtime on the CPU: `onnxruntime`, `openvino` (an extra), or "
        "`auto`: the fastest measured on this host that passes the quality gate (cached).",
    )
    precision: Literal["auto", "f32", "bf16"] = Field(
        "auto",
        description="Inference precision: `f32`, or `bf16` (OpenVINO, on CPUs with BF16, only "
        "for a model that passed the quality gate in it); `auto` lets the measurement decide.",
    )
    ungated_precision: bool = Field(
        False,
        description="Lets `RIS_PRECISION` name a precision the model has not passed the quality "
        "gate in on the development sets: for `make bench-quality` measuring it, not for use.",
    )
    batch_size: int = Field(64, ge=1, le=1024, description="Image paths per Celery task.")
    model_batch_size: int = Field(
        0,
        ge=0,
        le=1024,
        description="Images per inference call; 0 picks, once per host, the fastest of 1, 2, 4 "
        "and 8 with the runtime chosen (4 on a GPU).",
    )
    inference_threads: int = Field(
        0, ge=0, description="Inference threads per worker process; 0 means one per core."
    )
    decode_threads: int = Field(2, ge=1, description="Threads decoding images in each worker.")
    worker_concurrency: int = Field(
        1, ge=1, description="Celery worker processes per `celery worker` (each runs the model)."
    )
    queue: str = Field("ris", description="Celery queue the producer sends batches to.")
    max_queue_length: int = Field(
        2000, ge=1, description="Producer pauses while the queue holds more batches than this."
    )
    visibility_timeout: int = Field(
        600, ge=10, description="Seconds before an unacknowledged batch is redelivered."
    )
    lost_task_seconds: float = Field(
        60.0,
        ge=0,
        description="A batch sent and not done that the broker has neither queued nor given to "
        "a worker for this long (lost in a Redis restart) is sent again by a worker; 0 turns "
        "the check off.",
    )
    max_pixels: int = Field(
        100_000_000, ge=1, description="Images with more pixels are refused (decompression bombs)."
    )
    allowed_roots: str = Field(
        "",
        description="Workers only read images under these directories and URL prefixes "
        "(separated by `:`); empty allows any path or URL.",
    )
    change_detection: Literal["mtime", "hash"] = Field(
        "mtime",
        description="How `producer enqueue` tells a file changed: `mtime` (size and mtime) or "
        "`hash` (size and content hash; reads every file).",
    )
    fetch_timeout_seconds: float = Field(
        30.0, gt=0, description="Seconds a request for an image by URL may take."
    )
    fetch_retries: int = Field(
        2, ge=0, le=10, description="Retries of a URL after a timeout, 5xx or dropped connection."
    )
    fetch_threads: int = Field(8, ge=1, le=256, description="Parallel URL requests per worker.")
    fetch_max_bytes: int = Field(
        256 * 2**20, ge=1, description="Largest object a worker reads by URL, in bytes."
    )
    watch_settle_seconds: float = Field(
        2.0,
        gt=0,
        description="`producer watch` sends a file once its size and mtime stayed the same "
        "this long (a file still being written waits).",
    )
    watch_rescan_seconds: float = Field(
        600.0,
        ge=0,
        description="`producer watch` rescans its folders this often to catch missed events "
        "(network mounts), and lists its URL prefixes this often; 0 turns the periodic rescan "
        "off (refused with a URL prefix).",
    )
    outage_retry_seconds: float = Field(
        300.0,
        ge=0,
        description="How long workers retry a Redis or Milvus outage before giving a batch back.",
    )
    verify_top: int = Field(
        10,
        ge=0,
        le=100,
        description="Nearest hits a search checks by spatial verification (local features), "
        "to put a crop's or an edited copy's original first; 0 turns it off.",
    )
    verify_kept_top: int = Field(
        100,
        ge=0,
        le=1000,
        description="Hits a search checks after the RIS_VERIFY_TOP nearest, when none of those "
        "verified, among those whose local features are kept (by earlier searches, or `query "
        "features`): a match each (0.2-1.5 ms) instead of reading the picture. 0: none.",
    )
    verify_centre: bool = Field(
        False,
        description="When none of the hits a search checks verifies, search the middle of the "
        "query picture too (a picture pasted into a screenshot, padded or framed) and check its "
        "hits the same way: a second embedding, index request and round of checks for those "
        "searches, about twice their time.",
    )
    verify_pasted: bool = Field(
        True,
        description="When none of the hits a search checks verifies, search the pictures pasted "
        "inside the query picture too (up to two regions standing out from a flat background: a "
        "screenshot's photo, a framed or letterboxed picture), each checked as the whole query "
        "was, before RIS_VERIFY_CENTRE's centre. A query with no flat background has none.",
    )
    verify_weak: bool = Field(
        True,
        description="When none of the hits a search checks verifies, compare those on which "
        "4-9 features agree (a smooth picture, a small crop) with the query pixel for pixel, in "
        "order: the first that is one picture with it, covering most of the smaller, verifies.",
    )
    verify_frames: bool = Field(
        True,
        description="When nothing a search checks verifies, compare the 5 nearest hits with the "
        "query frame to frame (each inside its border, stretched onto the other, as it is or "
        "flipped): the most alike of those that are one picture with it, smooth gradients aside, "
        "comes first, unverified. A mild copy of a smooth picture (made grey, overlaid, framed) "
        "has too few features to verify.",
    )
    verify_region: bool = Field(
        True,
        description="When nothing a search checks verifies, the first of the first 5 hits on "
        "which 4-9 features agree whose part that those features lay under the query (covering "
        "80% of it) scores 0.6 or more against the query's vector, and no less than the nearest "
        "whole hit, comes first, unverified: a small crop under heavy edits, which the model still "
        "knows for its original's part. Up to 5 hits read in colour and embedded.",
    )
    pasted_nearest: bool = Field(
        True,
        description="When nothing a search checks verifies (RIS_VERIFY_FRAMES included), the "
        "nearest hit of a picture pasted in the query (RIS_VERIFY_PASTED: a screenshot's photo) "
        "comes first, unverified, when it scores at least 0.6 and more than the whole query's "
        "nearest: the page's vector describes the page, the pasted picture's the picture.",
    )
    api_tokens: str = Field(
        "",
        description="Who may use `query serve`: `HASH:COLLECTION[,COLLECTION]` entries separated "
        "by `;` (`*`: every collection), as `query token` prints them; only hashes are kept. "
        "Empty: no tokens, and `query serve` then listens on loopback only (or `--no-auth`).",
    )
    max_upload_bytes: int = Field(
        20 * 2**20, ge=1, description="Largest image `query serve` accepts in a search, in bytes."
    )
    cache_dir: Path = Field(
        default_factory=_default_cache_dir,
        description="Converted models, sample photos and evaluation datasets are cached here.",
    )
    feature_cache_gb: float = Field(
        8.0,
        ge=0,
        description="Local features kept between runs of `query duplicates` (at most 68 KB a "
        "picture), so a run after the first reads only the pictures added or changed since, "
        "and of searches (at most 136 KB), so a hit is checked without reading it; oldest "
        "first out beyond this many GB. 0: none kept.",
    )
    feature_cache_dir: Path | None = Field(
        None, description="Where those features are kept. Unset: `features` in RIS_CACHE_DIR."
    )

    def resolved_feature_cache_dir(self) -> Path:
        return self.feature_cache_dir or self.cache_dir / "features"

    @model_validator(mode="before")
    @classmethod
    def _collection_per_model(cls, values: Any) -> Any:
        if isinstance(values, dict) and not values.get("collection"):
            model = values.get("model") or cls.model_fields["model"].default
            values = {**values, "collection": "images_" + re.sub(r"\W", "_", str(model))}
        return values

    @property
    def allowed_root_list(self) -> list[str]:
        """Folders (real paths) and URL prefixes (canonical) workers may read."""
        roots = re.split(r":(?!//)", self.allowed_roots)
        return [normalise_path(r) if is_url(r) else os.path.realpath(r) for r in roots if r]

    @property
    def fetch_options(self) -> FetchOptions:
        return FetchOptions(
            self.fetch_timeout_seconds, self.fetch_retries, self.fetch_threads, self.fetch_max_bytes
        )

    @property
    def milvus_embedded(self) -> bool:
        """True when Milvus Lite runs inside this process (pymilvus's rule for a `.db` URI)."""
        return self.milvus_uri.endswith(".db")

    @property
    def resolved_inference_threads(self) -> int:
        return self.inference_threads or (os.cpu_count() or 1)


def setting_env_names() -> list[str]:
    """The environment variable names of every setting, in declaration order."""
    return [f"RIS_{name.upper()}" for name in Settings.model_fields]


def settings_environment(settings: Settings) -> dict[str, str]:
    """The RIS_* variables that recreate `settings` in another process."""
    return {f"RIS_{name.upper()}": str(value) for name, value in settings.model_dump().items()}


def load_settings() -> Settings:
    """Settings from the environment; a bad value raises SettingsError naming the variable."""
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"RIS_{'_'.join(str(part) for part in issue['loc']).upper()}: {issue['msg']}"
            for issue in error.errors()
        )
        raise SettingsError(f"invalid setting {problems}") from None
