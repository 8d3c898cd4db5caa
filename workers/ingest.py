"""The work of one task as a plain function: embed a batch of paths and upsert the vectors."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np

from ris.embedding.imaging import describe_os_error
from ris.embedding.pipeline import PathEmbedder
from ris.errors import RisError, TransientError
from ris.files.changes import content_hash
from ris.files.identity import image_id
from ris.files.read_policy import refusal_reason
from ris.index.base import ImageRecord, VectorIndex


@dataclass
class BatchResult:
    indexed: list[str]
    # Images refused, unreadable or undecodable: the file's fault, remembered until it changes.
    file_failures: dict[str, str] = field(default_factory=dict)
    # Images that decoded but that the index refused to store: not the file's fault.
    index_failures: dict[str, str] = field(default_factory=dict)
    embed_seconds: float = 0.0
    upsert_seconds: float = 0.0

    @property
    def failures(self) -> dict[str, str]:
        return {**self.file_failures, **self.index_failures}


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
    index: VectorIndex,
    policy: IngestPolicy | None = None,
) -> BatchResult:
    """Embed `paths`, upsert every image that decoded; a bad image is a failure, not an error.

    An index that refuses the batch for good (another model's collection, a bad request) fails
    its images with the reason; an outage (TransientError) is raised for the caller to retry.
    """
    policy = policy or IngestPolicy()
    started = time.perf_counter()
    result = BatchResult(indexed=[])
    readable = []
    for path in paths:
        reason = refusal_reason(path, policy.allowed_roots)
        if reason:
            result.file_failures[path] = reason
        else:
            readable.append(path)
    embedded = pipeline(readable)
    result.file_failures.update(embedded.failures)
    records: list[ImageRecord] = []
    for path, vector in zip(embedded.paths, embedded.vectors, strict=True):
        try:
            records.append(_record(path, vector, policy))
        except OSError as error:
            result.file_failures[path] = describe_os_error(error)
    embedded_at = time.perf_counter()
    try:
        index.upsert(records)
        result.indexed = [record.path for record in records]
    except TransientError:
        raise
    except RisError as error:
        result.index_failures = {record.path: str(error) for record in records}
    result.embed_seconds = embedded_at - started
    result.upsert_seconds = time.perf_counter() - embedded_at
    return result
