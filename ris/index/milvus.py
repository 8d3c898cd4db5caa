"""The vector index on Milvus: one collection of image vectors; the URI picks Lite or a server.

pymilvus errors stop here: an outage it could not ride out becomes ServiceUnavailableError,
any other refusal IndexRequestError (or CollectionMissingError), with Milvus' message.
"""

from __future__ import annotations

import functools
import logging
import math
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
)

from ris.embedding.models import get_model_spec
from ris.errors import (
    CollectionMismatchError,
    CollectionMissingError,
    IndexRequestError,
    RisError,
    ServiceUnavailableError,
)
from ris.files.changes import FileState
from ris.index.base import ImageRecord, RowFilter, RowPage, SearchHit
from ris.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

PATH_MAX_LENGTH = 4096
HASH_LENGTH = 32
# Keep each upsert message far below gRPC's 64 MB limit whatever the dimension.
UPSERT_MAX_BYTES = 16 * 1024 * 1024
SEARCH_OUTPUT_FIELDS = ["path", "size", "mtime_ns", "content_hash"]
# Bookkeeping reads (change detection, counts, prune) must see every write before them;
# searches keep the collection's default (Bounded), which a real Milvus serves faster.
READ_YOUR_WRITES = "Strong"
MAX_ID = 2**63 - 1
# Collection property naming the model whose vectors the collection holds.
MODEL_PROPERTY = "ris.model"
# Milvus caps the rows one query returns (offset + limit <= 16384).
QUERY_WINDOW = 16384
# Bytes one read may return: a real Milvus 2.3 refuses a 64 MB result ("query results exceed
# the limit size"). Few large reads cost less than many small ones: each filtered query on
# Milvus Lite scans the whole collection (about 2.5 s at 100,000 rows of the default model).
READ_MAX_BYTES = 32 * 1024 * 1024
# Rows of paths one read may return, however long the paths.
PATH_WINDOW = min(QUERY_WINDOW, READ_MAX_BYTES // PATH_MAX_LENGTH)
# Reads by id in flight at once while reading every row. Milvus Lite serves two side by side
# in two thirds of the time it takes one after the other (100,000 rows: 27 s against 41 s).
READ_THREADS = 2
STATE_FIELDS = ["id", "size", "mtime_ns", "content_hash"]
ROW_FIELDS = ("id", "vector", "path", "size", "mtime_ns", "content_hash")
# HNSW's graph degree and build breadth (docs/SCALING.md sizes memory from them).
HNSW_PARAMS = {"M": 16, "efConstruction": 200}
# HNSW's search breadth (candidates kept while walking the graph); bench.scale measures recall.
SEARCH_EF = 64
# IVF: lists per segment, and how many of them a search reads (bench.scale measures recall).
IVF_PARAMS = {"nlist": 1024}
SEARCH_NPROBE = 128


@dataclass(frozen=True)
class IndexKind:
    """A vector index Milvus builds per segment: its build parameters, and its search breadth
    (`breadth`: ef for HNSW, nprobe for IVF; 0 means this module's default)."""

    milvus_type: str
    build: dict[str, int]

    def search_params(self, top_k: int, breadth: int = 0) -> dict[str, int]:
        if self.milvus_type == "HNSW":
            return {"ef": max(breadth or SEARCH_EF, top_k)}
        if self.milvus_type == "FLAT":
            return {}
        return {"nprobe": min(breadth or SEARCH_NPROBE, self.build["nlist"])}


# RIS_INDEX_TYPE: what a new collection is built with; an existing one keeps its own.
INDEX_KINDS = {
    # Exact search over every row: Milvus Lite's default here. Lite builds a FAISS HNSW graph
    # per segment, and in a 218-row segment of similar drawings one row got no inbound link at
    # all, so no search, at any ef, could return it (`query audit` found it).
    "flat": IndexKind("FLAT", {}),
    "hnsw": IndexKind("HNSW", HNSW_PARAMS),
    "ivf_sq8": IndexKind("IVF_SQ8", IVF_PARAMS),
    "ivf_flat": IndexKind("IVF_FLAT", IVF_PARAMS),
}
GRPC_OPTIONS = {
    # Subchannels of its own: gRPC's process-wide pool carried one connection's reconnect
    # back-off over to every new client of the same server, which then failed at once.
    "grpc.use_local_subchannel_pool": 1,
    # No keepalive pings on idle connections: Milvus Lite's server answers pymilvus's 10 s
    # pings with GOAWAY "too_many_pings", which dropped the connection.
    "grpc.keepalive_permit_without_calls": 0,
}
_TRANSIENT_MARKERS = (
    "fail connecting",
    "unavailable",
    "deadline exceeded",
    "connection refused",
    "socket closed",
    "released",
    "not loaded",
)


def is_transient(error: BaseException) -> bool:
    """A Milvus outage or restart, worth retrying (a bad request is not)."""
    if not isinstance(error, MilvusException):
        return False
    text = f"{error.message}".lower()
    return any(marker in text for marker in _TRANSIENT_MARKERS)


def _collection_gone(error: MilvusException) -> bool:
    """Milvus says the collection does not exist (dropped since this client prepared it)."""
    text = f"{error.message}".lower()
    return "collection" in text and any(
        marker in text for marker in ("not exist", "not found", "can't find", "cannot find")
    )


def _credentials_refused(error: MilvusException) -> bool:
    text = f"{error.message}".lower()
    return any(marker in text for marker in ("auth", "password", "credential", "unauthenticated"))


def translate(error: MilvusException, uri: str) -> RisError:
    """The project's error for a pymilvus one: transient (an outage) or permanent."""
    if is_transient(error):
        return ServiceUnavailableError(f"Milvus at {uri} unavailable: {error.message}")
    return IndexRequestError(f"Milvus: {error.message}")


def _filter_literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _prefix_condition(prefix: str) -> str:
    """Paths starting with `prefix`, as a range of strings: exact, where LIKE would read `_`
    and `%` in a path as wildcards."""
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return f"(path >= {_filter_literal(prefix)} and path < {_filter_literal(upper)})"


def _under(prefix: str) -> str:
    """Rows whose path starts with `prefix`; every row when it is empty."""
    return _prefix_condition(prefix) if prefix else ""


def filter_expression(where: RowFilter) -> str:
    """The Milvus boolean expression for `where`."""
    conditions = []
    if where.prefixes:
        conditions.append("(" + " or ".join(map(_prefix_condition, where.prefixes)) + ")")
    if where.modified_since_ns is not None:
        conditions.append(f"mtime_ns >= {int(where.modified_since_ns)}")
    if where.modified_before_ns is not None:
        conditions.append(f"mtime_ns < {int(where.modified_before_ns)}")
    return " and ".join(conditions)


class MilvusIndex:
    """Create-on-first-use collection with an inner-product index over normalised vectors.

    Every call rides out a Milvus outage of up to `retry_seconds` (0 fails at once, for CLIs).
    """

    def __init__(
        self,
        uri: str,
        collection: str,
        dim: int,
        token: str = "",
        timeout: float = 30.0,
        retry_seconds: float = 0.0,
        model: str = "",
        index_type: str = "auto",
    ):
        self.uri = uri
        self.index_type = index_type
        self.collection = collection
        self.dim = dim
        self.model = model
        self.timeout = timeout
        self.retry_seconds = retry_seconds
        try:
            # A connection of its own: pymilvus shares one per URI across a process by default,
            # and a shared one left broken by an outage failed every later client at once.
            self.client = MilvusClient(
                uri=uri, token=token, timeout=timeout, dedicated=True, grpc_options=GRPC_OPTIONS
            )
        except MilvusException as error:
            if _credentials_refused(error):
                raise IndexRequestError(
                    f"Milvus at {uri} refused the credentials (RIS_MILVUS_TOKEN): {error.message}"
                ) from None
            # pymilvus reports a refused sign-in as a failed connection: say it may be either.
            suspect = " or it refused the credentials (RIS_MILVUS_TOKEN)" if token else ""
            message = f"cannot reach Milvus at {uri}{suspect}: {error.message}"
            raise ServiceUnavailableError(message) from None
        self._ready = False
        self.index_kind = INDEX_KINDS["hnsw" if index_type == "auto" else index_type]

    def _call(self, operation: Callable[[], T]) -> T:
        """Run `operation`, retrying outages for `retry_seconds`; raise only project errors."""
        retrying = Retrying(
            stop=stop_after_delay(self.retry_seconds),
            wait=wait_exponential(multiplier=0.5, max=10),
            retry=retry_if_exception(is_transient),
            before_sleep=self._before_retry,
            reraise=True,
        )
        try:
            return retrying(operation)
        except MilvusException as error:
            raise translate(error, self.uri) from None

    def _before_retry(self, state: RetryCallState) -> None:
        # A restarted server has released the collection: load it again on the next attempt.
        self._ready = False
        error = state.outcome.exception() if state.outcome else None
        log.warning("Milvus at %s unavailable (%s); retrying", self.uri, error)

    def exists(self) -> bool:
        # Once prepared in this process the collection is known to exist: no RPC per batch.
        if self._ready:
            return True
        return bool(self._call(lambda: self.client.has_collection(self.collection)))

    def _kind_for_new_collection(self) -> IndexKind:
        """`auto`: exact search on Milvus Lite (its HNSW can strand a row), HNSW on a server."""
        if self.index_type != "auto":
            return INDEX_KINDS[self.index_type]
        lite = str(self.client.get_server_version()).startswith("milvus_lite")
        return INDEX_KINDS["flat" if lite else "hnsw"]

    def _create(self) -> None:
        kind = self._kind_for_new_collection()
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        schema.add_field("path", DataType.VARCHAR, max_length=PATH_MAX_LENGTH)
        schema.add_field("size", DataType.INT64)
        schema.add_field("mtime_ns", DataType.INT64)
        schema.add_field("content_hash", DataType.VARCHAR, max_length=HASH_LENGTH)
        index = self.client.prepare_index_params()
        index.add_index(
            field_name="vector",
            index_type=kind.milvus_type,
            metric_type="IP",
            params=kind.build,
        )
        try:
            self.client.create_collection(
                self.collection,
                schema=schema,
                index_params=index,
                timeout=self.timeout,
                properties={MODEL_PROPERTY: self.model} if self.model else None,
            )
            log.info("created collection %s (dim %d)", self.collection, self.dim)
        except MilvusException:
            # Another worker created it between our check and our create.
            if not self.client.has_collection(self.collection):
                raise

    def _prepare(self) -> None:
        if not self.client.has_collection(self.collection):
            self._create()
        self._check_compatible()
        self.index_kind = self._built_index()
        self.client.load_collection(self.collection, timeout=self.timeout)
        self._ready = True

    def _built_index(self) -> IndexKind:
        """The index the collection was built with (searched with its own parameters)."""
        described = self.client.describe_index(self.collection, "vector") or {}
        built = str(described.get("index_type", self.index_kind.milvus_type))
        for kind in INDEX_KINDS.values():
            if kind.milvus_type == built:
                params = {key: int(described[key]) for key in kind.build if key in described}
                return IndexKind(built, {**kind.build, **params})
        return self.index_kind

    def ensure_collection(self) -> None:
        """Create the collection and its index if missing; load it so it can be searched."""
        if not self._ready:
            self._call(self._prepare)

    def _check_compatible(self) -> None:
        """Refuse a collection holding another model's vectors: their scores mean nothing."""
        description = self.client.describe_collection(self.collection)
        holder = description.get("properties", {}).get(MODEL_PROPERTY, "")
        if self.model and holder and holder != self.model:
            raise CollectionMismatchError(
                f"collection {self.collection!r} holds vectors of model {holder}, not "
                f"{self.model}; each model needs its own collection (set RIS_COLLECTION)"
            )
        fields = description.get("fields", [])
        missing = set(ROW_FIELDS) - {field.get("name") for field in fields}
        if missing:
            raise CollectionMismatchError(
                f"collection {self.collection!r} was not made by this product (it has no "
                f"{', '.join(sorted(missing))} field); use another RIS_COLLECTION"
            )
        for field in fields:
            if field.get("name") == "vector":
                existing = int(field.get("params", {}).get("dim", self.dim))
                if existing != self.dim:
                    raise CollectionMismatchError(
                        f"collection {self.collection!r} holds {existing}-d vectors, "
                        f"this model makes {self.dim}-d ones; use another RIS_COLLECTION"
                    )

    def _loaded(self, operation: Callable[[], T], recreate: bool = False) -> T:
        """Run `operation` on the loaded collection, retrying outages (and reloading after).

        A collection dropped since this client prepared it is created again once when
        `recreate` (writers: a fresh worker would create it too); readers are told it is gone.
        """

        def attempt() -> T:
            if not self._ready:
                self._prepare()
            return operation()

        def attempt_once_more_if_gone() -> T:
            try:
                return attempt()
            except MilvusException as error:
                # Whatever went wrong, check the collection afresh next time: it may have
                # been replaced, and that check names the problem better than the failed call.
                self._ready = False
                if not _collection_gone(error):
                    raise
                if not recreate:
                    raise CollectionMissingError(self._missing_message()) from None
                log.warning("collection %s was dropped; creating it again", self.collection)
                return attempt()

        return self._call(attempt_once_more_if_gone)

    def _missing_message(self) -> str:
        return (
            f"collection {self.collection!r} does not exist at {self.uri}; "
            "ingest images first with `producer enqueue`"
        )

    def require_collection(self) -> None:
        """For readers: fail clearly when nothing has been ingested into this collection yet."""
        if not self.exists():
            raise CollectionMissingError(self._missing_message())
        self.ensure_collection()

    def upsert(self, records: Sequence[ImageRecord]) -> int:
        """Insert or replace rows by id, in messages small enough for gRPC. Returns rows written."""
        for rows in self.messages(records):
            self._upsert_rows(rows)
        return len(records)

    def messages(self, records: Sequence[ImageRecord]) -> Iterator[list[dict[str, Any]]]:
        """`records` as Milvus rows, in messages far below gRPC's limit whatever the dimension."""
        rows_per_message = max(1, UPSERT_MAX_BYTES // (self.dim * 4 + PATH_MAX_LENGTH))
        for start in range(0, len(records), rows_per_message):
            yield [
                {
                    "id": record.id,
                    "vector": record.vector.tolist(),
                    "path": record.path,
                    "size": record.size,
                    "mtime_ns": record.mtime_ns,
                    "content_hash": record.content_hash,
                }
                for record in records[start : start + rows_per_message]
            ]

    def _upsert_rows(self, rows: list[dict[str, Any]]) -> None:
        self._loaded(
            lambda: self.client.upsert(self.collection, rows, timeout=self.timeout), recreate=True
        )

    def flush(self) -> None:
        """Seal what was written so searches over it are fast (Milvus Lite scans unflushed rows).
        A collection nothing was written to (not created) has nothing to seal, and stays so."""
        if not self._ready and not self.exists():
            return
        self._loaded(lambda: self.client.flush(self.collection, timeout=max(self.timeout, 120.0)))

    def search(
        self,
        vectors: np.ndarray,
        top_k: int,
        where: RowFilter | None = None,
        breadth: int = 0,
    ) -> list[list[SearchHit]]:
        """The `top_k` nearest rows passing `where` for each query vector, in one request.

        The filter is a Milvus expression evaluated before the vector search, so each query gets
        its k nearest among the rows that pass, not fewer. `breadth` overrides the index's
        search breadth (ef or nprobe) for benchmarks.
        """
        self.require_collection()
        data = [vector.tolist() for vector in np.asarray(vectors, dtype=np.float32)]
        if not data:
            return []
        results = self._loaded(
            lambda: self.client.search(
                self.collection,
                data=data,
                anns_field="vector",
                limit=top_k,
                filter=filter_expression(where) if where else "",
                output_fields=SEARCH_OUTPUT_FIELDS,
                search_params={
                    "metric_type": "IP",
                    "params": self.index_kind.search_params(top_k, breadth),
                },
                timeout=self.timeout,
            )
        )
        return [
            [
                SearchHit(
                    id=int(hit["id"]),
                    path=hit["entity"]["path"],
                    score=float(hit["distance"]),
                    state=_file_state(hit["entity"]),
                )
                for hit in hits
            ]
            for hits in results
        ]

    def get_file_states(self, ids: list[int]) -> dict[int, FileState]:
        """What the index holds for the rows among `ids`; {} when the collection doesn't exist."""
        if not ids or not self.exists():
            return {}
        rows: list[dict[str, Any]] = self._loaded(
            lambda: self.client.get(
                self.collection,
                ids=ids,
                output_fields=STATE_FIELDS,
                timeout=self.timeout,
                # Bounded: a Strong read waits for every in-flight write of every worker, which
                # stalled the producer on a busy server. A file indexed a moment ago and read
                # stale is merely sent again, and its upsert by id changes nothing.
                consistency_level="Bounded",
            )
        )
        return {int(row["id"]): _file_state(row) for row in rows}

    def get_paths(self, ids: list[int]) -> dict[int, str]:
        """The indexed path of each of `ids` that is in the collection."""
        if not ids:
            return {}
        rows: list[dict[str, Any]] = self._loaded(
            lambda: self.client.get(
                self.collection, ids=ids, output_fields=["id", "path"], timeout=self.timeout
            )
        )
        return {int(row["id"]): row["path"] for row in rows}

    def iter_paths(self, prefix: str = "", page_size: int = 0) -> Iterator[tuple[int, str]]:
        """(id, path) of every row whose path starts with `prefix`, a page at a time (of about
        `page_size` rows; 0 for as many as one read may return)."""
        condition = _under(prefix)
        page_size = page_size or rows_per_page(PATH_WINDOW)
        for rows in self._pages(condition, ["id", "path"], page_size, PATH_WINDOW):
            for row in rows:
                yield int(row["id"]), row["path"]

    def page_rows(self, vectors: bool = True) -> int:
        """Rows of one RowPage: their paths, file states and (with `vectors`) vectors at most
        READ_MAX_BYTES, however long the paths."""
        return _window((self.dim * 4 if vectors else 0) + PATH_MAX_LENGTH + 2 * 8 + HASH_LENGTH)

    def iter_rows(self, prefix: str = "", vectors: bool = True) -> Iterator[RowPage]:
        """Every row whose path starts with `prefix`, a page of at most `page_rows` rows at a
        time; without `vectors` (for what needs only paths and file states), each page's
        vectors are (n, 0). The ids are listed first (by id range), then the rows read by id,
        READ_THREADS reads at once. Milvus Lite scans every row for each filtered query but
        not for a read by id, and a listing beside the reads slowed both. At 100,000 rows of
        the default model: ids listed in 21-22 s and rows read in 27-28 s, against 34-38 s
        listing paths and 42 s reading vectors one read at a time (docs/BENCHMARKS.md)."""
        condition = _under(prefix)
        pages = self._pages(condition, ["id"], rows_per_page(QUERY_WINDOW), QUERY_WINDOW)
        ids = np.fromiter((row["id"] for rows in pages for row in rows), np.int64)
        size = self.page_rows(vectors)
        read = functools.partial(self._read_page, vectors=vectors)
        with ThreadPoolExecutor(READ_THREADS, thread_name_prefix="milvus-read") as pool:
            reading: deque[Future[RowPage | None]] = deque()
            for start in range(0, len(ids), size):
                reading.append(pool.submit(read, ids[start : start + size].tolist()))
                if len(reading) == READ_THREADS and (page := reading.popleft().result()):
                    yield page
            while reading:
                if page := reading.popleft().result():
                    yield page

    def _read_page(self, ids: list[int], vectors: bool = True) -> RowPage | None:
        """The rows of `ids` still in the collection, in that order; None when none is."""
        fields = ["id", "path", "size", "mtime_ns", "content_hash"]
        if vectors:
            fields.append("vector")
        read = functools.partial(
            self.client.get,
            self.collection,
            ids=ids,
            output_fields=fields,
            timeout=self.timeout,
            consistency_level="Session",
        )
        rows = {int(row["id"]): row for row in self._loaded(read)}
        kept = [rows[row_id] for row_id in ids if row_id in rows]  # not deleted meanwhile
        if not kept:
            return None
        return RowPage(
            np.array([row["id"] for row in kept], np.int64),
            [row["path"] for row in kept],
            np.array([row["vector"] for row in kept], np.float32)
            if vectors
            else np.zeros((len(kept), 0), np.float32),
            [_file_state(row) for row in kept],
        )

    def get_vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        """The stored vector of each of `ids` that is in the collection."""
        found: dict[int, np.ndarray] = {}
        window = _window(self.dim * 4)
        for start in range(0, len(ids), window):
            read = functools.partial(
                self.client.get,
                self.collection,
                ids=ids[start : start + window],
                output_fields=["id", "vector"],
                timeout=self.timeout,
                consistency_level="Session",
            )
            rows: list[dict[str, Any]] = self._loaded(read)
            found |= {int(row["id"]): np.asarray(row["vector"], np.float32) for row in rows}
        return found

    def _pages(
        self, condition: str, fields: list[str], page_size: int, window: int
    ) -> Iterator[list[dict[str, Any]]]:
        """Every row matching `condition`, `fields` of it, in pages ordered by id.

        Pages are id ranges (ids are uniform hashes, so a range of 2**63 / (rows / page_size)
        holds about `page_size` rows); a range that fills the query window is split in two.
        Neither Milvus Lite's unordered `limit` nor pymilvus's query_iterator (which misses
        fresh rows on a real Milvus 2.3) can be trusted to page without gaps.
        """
        if not self.exists():
            return
        pages = max(1, -(-self.count() // page_size))
        step = -(-MAX_ID // pages)
        for low in range(0, MAX_ID + 1, step):
            yield from self._id_range(condition, fields, low, min(low + step - 1, MAX_ID), window)

    def _id_range(
        self, condition: str, fields: list[str], low: int, high: int, window: int
    ) -> Iterator[list[dict[str, Any]]]:
        expression = " and ".join(filter(None, (condition, f"id >= {low}", f"id <= {high}")))
        rows = self._query_rows(expression, window, fields)
        if len(rows) >= window and high > low:
            middle = (low + high) // 2
            yield from self._id_range(condition, fields, low, middle, window)
            yield from self._id_range(condition, fields, middle + 1, high, window)
            return
        yield sorted(rows, key=lambda row: int(row["id"]))

    def _query_rows(self, expression: str, limit: int, fields: list[str]) -> list[dict[str, Any]]:
        return self._loaded(
            lambda: self.client.query(
                self.collection,
                filter=expression,
                output_fields=fields,
                limit=limit,
                timeout=self.timeout,
                # Cheap on a real Milvus, unlike Strong: this client's own writes are seen;
                # rows other clients wrote a moment ago may not be, which pruning can afford.
                consistency_level="Session",
            )
        )

    def count(self, prefix: str = "") -> int:
        """Rows whose path starts with `prefix`."""
        if not self.exists():
            return 0
        result = self._loaded(
            lambda: self.client.query(
                self.collection,
                filter=_under(prefix),
                output_fields=["count(*)"],
                timeout=self.timeout,
                consistency_level=READ_YOUR_WRITES,
            )
        )
        return int(result[0]["count(*)"])

    def delete(self, ids: list[int]) -> None:
        if ids:
            self._loaded(lambda: self.client.delete(self.collection, ids=ids, timeout=self.timeout))

    def drop(self) -> None:
        def drop_if_there() -> None:
            if self.client.has_collection(self.collection):
                self.client.drop_collection(self.collection)

        self._call(drop_if_there)
        self._ready = False

    def close(self) -> None:
        self.client.close()


def _file_state(row: dict[str, Any]) -> FileState:
    return FileState(int(row["size"]), int(row["mtime_ns"]), row["content_hash"])


def _window(row_bytes: int) -> int:
    """Rows one read may return when each takes at most `row_bytes`."""
    return max(1, min(QUERY_WINDOW, READ_MAX_BYTES // row_bytes))


def rows_per_page(window: int) -> int:
    """Rows to expect per id range so that a range rarely fills `window` and must be read again
    in halves: the rows in a range of uniform ids vary by about their square root, and 5 of
    those above the mean happens once in millions of ranges."""
    return max(1, window - 5 * math.isqrt(window))


def open_index(settings: Settings, retry_seconds: float = 0.0) -> MilvusIndex:
    """The index of the configured collection, for the configured model's vectors."""
    return MilvusIndex(
        settings.milvus_uri,
        settings.collection,
        dim=get_model_spec(settings.model).dim,
        token=settings.milvus_token,
        retry_seconds=retry_seconds,
        model=settings.model,
        index_type=settings.index_type,
    )
