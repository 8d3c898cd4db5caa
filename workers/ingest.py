"""The work of one task as a plain function: embed a batch of paths and upsert the vectors."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from ris.identity import image_id
from ris.imaging import describe_os_error
from ris.pipeline import EmbeddingPipeline
from ris.store import ImageRecord, VectorStore


@dataclass
class BatchResult:
    indexed: int
    failures: dict[str, str] = field(default_factory=dict)
    embed_seconds: float = 0.0
    upsert_seconds: float = 0.0


def process_batch(paths: list[str], pipeline: EmbeddingPipeline, store: VectorStore) -> BatchResult:
    """Embed `paths`, upsert every image that decoded; a bad image is a failure, not an error."""
    started = time.perf_counter()
    embedded = pipeline(paths)
    failures = dict(embedded.failures)
    records: list[ImageRecord] = []
    for path, vector in zip(embedded.paths, embedded.vectors, strict=True):
        try:
            stat = os.stat(path)
        except OSError as error:
            failures[path] = describe_os_error(error)
            continue
        records.append(
            ImageRecord(
                id=image_id(path),
                path=path,
                vector=vector,
                size=stat.st_size,
                mtime_ns=stat.st_mtime_ns,
            )
        )
    embedded_at = time.perf_counter()
    store.upsert(records)
    return BatchResult(
        indexed=len(records),
        failures=failures,
        embed_seconds=embedded_at - started,
        upsert_seconds=time.perf_counter() - embedded_at,
    )
