"""The work of one task as a plain function: embed a batch of paths or URLs, upsert the vectors."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np

from ris.embedding.imaging import describe_os_error
from ris.embedding.pipeline import PathEmbedder
from ris.errors import RisError, TransientError
from ris.files.changes import FileState, content_hash
from ris.files.identity import image_id, is_url
from ris.files.read_policy import refusal_reason
from ris.files.remote import UNREACHABLE, Remote
from ris.index.base import ImageRecord, VectorIndex


@dataclass
class BatchResult:
    indexed: list[str]
    # Images refused, unreadable or undecodable: the file's fault, remembered until it changes.
    file_failures: dict[str, str] = field(default_factory=dict)
    # Images that decoded but that the index refused to store: not the file's fault.
    index_failures: dict[str, str] = field(default_factory=dict)
    # (size, mtime_ns) of failed URLs as their HEAD gave it, so an unchanged object is not
    # sent again (a file's is stat'ed when its failure is recorded).
    failed_states: dict[str, tuple[int, int]] = field(default_factory=dict)
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


def _record(
    path: str, vector: np.ndarray, policy: IngestPolicy, remote: dict[str, FileState]
) -> ImageRecord:
    if path in remote:  # a URL: the state its HEAD gave, before the bytes were read
        state = remote[path]
        return ImageRecord(
            image_id(path), path, vector, state.size, state.mtime_ns, state.content_hash
        )
    stat = os.stat(path)
    return ImageRecord(
        id=image_id(path),
        path=path,
        vector=vector,
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        content_hash=content_hash(path) if policy.hash_contents else "",
    )


def _url_states(
    urls: list[str], remote: Remote | None, result: BatchResult
) -> dict[str, FileState]:
    """Each URL's state (HEADs in parallel); one that cannot be read fails with the reason."""
    if not urls:
        return {}
    states: dict[str, FileState] = {}
    for url, state in (remote or Remote()).states(urls).items():
        if isinstance(state, FileState):
            states[url] = state
        else:
            result.file_failures[url] = state
            result.failed_states[url] = (UNREACHABLE.size, UNREACHABLE.mtime_ns)
    return states


def process_batch(
    paths: list[str],
    pipeline: PathEmbedder,
    index: VectorIndex,
    policy: IngestPolicy | None = None,
    remote: Remote | None = None,
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
    states = _url_states([path for path in readable if is_url(path)], remote, result)
    readable = [path for path in readable if path not in result.file_failures]
    embedded = pipeline(readable)
    result.file_failures.update(embedded.failures)
    result.failed_states.update(
        (path, (states[path].size, states[path].mtime_ns))
        for path in embedded.failures
        if path in states
    )
    records: list[ImageRecord] = []
    for path, vector in zip(embedded.paths, embedded.vectors, strict=True):
        try:
            records.append(_record(path, vector, policy, states))
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
