"""The work of one task as a plain function: embed a batch of paths and upsert the vectors."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np

from ris.access import content_hash, refusal_reason
from ris.errors import CollectionMismatchError
from ris.identity import image_id
from ris.imaging import describe_os_error
from ris.pipeline import PathEmbedder
from ris.store import ImageRecord, VectorStore


@dataclass
class BatchResult:
    indexed: list[str]
    failures: dict[str, str] = field(default_factory=dict)
    embed_seconds: float = 0.0
    upsert_seconds: float = 0.0


@dataclass(frozen=True)
class IngestPolicy:
    """What a worker may read and what it records of each file."""

    allowed_roots: list[str] = field(default_factory=list)
    hash_contents: bool = False


def _record(path: str, vector: np.ndarray, policy: IngestPolicy) -> ImageRecord:
    stat = os.stat(path)
    return ImageRecord(
        id=image_id(path),
        path=path,
        vector=vector,
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        content_hash=content_hash(path) if policy.hash_contents else "",
    )


def process_batch(
    paths: list[str],
    pipeline: PathEmbedder,
    store: VectorStore,
    policy: IngestPolicy | None = None,
) -> BatchResult:
    """Embed `paths`, upsert every image that decoded; a bad image is a failure, not an error."""
    policy = policy or IngestPolicy()
    started = time.perf_counter()
    failures: dict[str, str] = {}
    readable = []
    for path in paths:
        reason = refusal_reason(path, policy.allowed_roots)
        if reason:
            failures[path] = reason
        else:
            readable.append(path)
    embedded = pipeline(readable)
    failures.update(embedded.failures)
    records: list[ImageRecord] = []
    for path, vector in zip(embedded.paths, embedded.vectors, strict=True):
        try:
            records.append(_record(path, vector, policy))
        except OSError as error:
            failures[path] = describe_os_error(error)
    embedded_at = time.perf_counter()
    try:
        store.upsert(records)
    except CollectionMismatchError as error:
        # Retrying cannot help: every image of the batch fails, naming the misconfiguration.
        failures.update({record.path: str(error) for record in records})
        records = []
    return BatchResult(
        indexed=[record.path for record in records],
        failures=failures,
        embed_seconds=embedded_at - started,
        upsert_seconds=time.perf_counter() - embedded_at,
    )
