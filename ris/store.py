"""The vector store: one Milvus collection of image vectors; the URI picks Lite or a server."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException

from ris.errors import CollectionMissingError, ServiceUnavailableError

log = logging.getLogger(__name__)

PATH_MAX_LENGTH = 4096
# Keep each upsert message far below gRPC's 64 MB limit whatever the dimension.
UPSERT_MAX_BYTES = 16 * 1024 * 1024
SEARCH_OUTPUT_FIELDS = ["path"]


@dataclass(frozen=True)
class ImageRecord:
    """One row of the collection."""

    id: int
    path: str
    vector: np.ndarray
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class SearchHit:
    id: int
    path: str
    score: float


class VectorStore:
    """Create-on-first-use collection with an inner-product index over normalised vectors."""

    def __init__(self, uri: str, collection: str, dim: int, token: str = "", timeout: float = 30.0):
        self.uri = uri
        self.collection = collection
        self.dim = dim
        self.timeout = timeout
        try:
            self.client = MilvusClient(uri=uri, token=token, timeout=timeout)
        except MilvusException as error:
            raise ServiceUnavailableError(
                f"cannot reach Milvus at {uri}: {error.message}"
            ) from None
        self._ready = False

    def exists(self) -> bool:
        return bool(self.client.has_collection(self.collection))

    def ensure_collection(self) -> None:
        """Create the collection and its index if missing; load it so it can be searched."""
        if self._ready:
            return
        if not self.exists():
            schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
            schema.add_field("path", DataType.VARCHAR, max_length=PATH_MAX_LENGTH)
            schema.add_field("size", DataType.INT64)
            schema.add_field("mtime_ns", DataType.INT64)
            index = self.client.prepare_index_params()
            index.add_index(
                field_name="vector",
                index_type="HNSW",
                metric_type="IP",
                params={"M": 16, "efConstruction": 200},
            )
            try:
                self.client.create_collection(
                    self.collection, schema=schema, index_params=index, timeout=self.timeout
                )
                log.info(
                    "created collection %s (dim %d) at %s", self.collection, self.dim, self.uri
                )
            except MilvusException:
                # Another worker created it between our check and our create.
                if not self.exists():
                    raise
        self._check_dimension()
        self.client.load_collection(self.collection, timeout=self.timeout)
        self._ready = True

    def _check_dimension(self) -> None:
        description = self.client.describe_collection(self.collection)
        for field in description.get("fields", []):
            if field.get("name") == "vector":
                existing = int(field.get("params", {}).get("dim", self.dim))
                if existing != self.dim:
                    raise CollectionMissingError(
                        f"collection {self.collection!r} holds {existing}-d vectors, "
                        f"this model makes {self.dim}-d ones; use another RIS_COLLECTION"
                    )

    def require_collection(self) -> None:
        """For readers: fail clearly when nothing has been ingested into this collection yet."""
        if not self.exists():
            raise CollectionMissingError(
                f"collection {self.collection!r} does not exist at {self.uri}; "
                "ingest images first with `producer enqueue`"
            )
        self.ensure_collection()

    def upsert(self, records: list[ImageRecord]) -> int:
        """Insert or replace rows by id, in messages small enough for gRPC. Returns rows written."""
        if not records:
            return 0
        self.ensure_collection()
        rows_per_message = max(1, UPSERT_MAX_BYTES // (self.dim * 4 + PATH_MAX_LENGTH))
        for start in range(0, len(records), rows_per_message):
            chunk = records[start : start + rows_per_message]
            self.client.upsert(
                self.collection,
                [
                    {
                        "id": record.id,
                        "vector": record.vector.tolist(),
                        "path": record.path,
                        "size": record.size,
                        "mtime_ns": record.mtime_ns,
                    }
                    for record in chunk
                ],
                timeout=self.timeout,
            )
        return len(records)

    def flush(self) -> None:
        """Seal what was written so searches over it are fast (Milvus Lite scans unflushed rows)."""
        self.client.flush(self.collection, timeout=max(self.timeout, 120.0))

    def search(self, vector: np.ndarray, top_k: int) -> list[SearchHit]:
        self.require_collection()
        results = self.client.search(
            self.collection,
            data=[vector.astype(np.float32).tolist()],
            anns_field="vector",
            limit=top_k,
            output_fields=SEARCH_OUTPUT_FIELDS,
            search_params={"metric_type": "IP", "params": {"ef": max(64, top_k)}},
            timeout=self.timeout,
        )
        return [
            SearchHit(id=int(hit["id"]), path=hit["entity"]["path"], score=float(hit["distance"]))
            for hit in results[0]
        ]

    def get_file_states(self, ids: list[int]) -> dict[int, tuple[int, int]]:
        """(size, mtime_ns) of the rows among `ids` that exist; {} when the collection doesn't."""
        if not ids or not self.exists():
            return {}
        self.ensure_collection()
        rows: list[dict[str, Any]] = self.client.get(
            self.collection, ids=ids, output_fields=["id", "size", "mtime_ns"], timeout=self.timeout
        )
        return {int(row["id"]): (int(row["size"]), int(row["mtime_ns"])) for row in rows}

    def count(self) -> int:
        if not self.exists():
            return 0
        self.ensure_collection()
        result = self.client.query(
            self.collection, filter="", output_fields=["count(*)"], timeout=self.timeout
        )
        return int(result[0]["count(*)"])

    def delete(self, ids: list[int]) -> None:
        if ids:
            self.client.delete(self.collection, ids=ids, timeout=self.timeout)

    def drop(self) -> None:
        if self.exists():
            self.client.drop_collection(self.collection)
        self._ready = False

    def close(self) -> None:
        self.client.close()
