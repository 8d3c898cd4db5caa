"""`query serve`: the search service, with the model loaded once and kept warm."""

from __future__ import annotations

import functools
import io
import mimetypes
import os
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import resources
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, UploadFile
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    Response,
    StreamingResponse,
)
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from PIL import ImageOps
from starlette.concurrency import run_in_threadpool

from query.auth import Access, TokenGrant, check, parse_grants
from query.duplicate_runs import KEPT_RUNS, DuplicateRun, DuplicateRuns, RunRequest
from query.schemas import (
    HttpDuplicateGroup,
    HttpDuplicateRun,
    HttpDuplicatesResponse,
    HttpHit,
    HttpSearchResponse,
    Timings,
)
from ris.duplicates.candidates import Progress
from ris.duplicates.groups import find_duplicates, open_duplicates_cache
from ris.embedding.imaging import open_image
from ris.errors import ImageDecodeError, RisError
from ris.files.identity import is_url
from ris.files.read_policy import refusal_reason
from ris.files.remote import FetchError
from ris.index.base import RowFilter
from ris.index.milvus import open_index
from ris.jobs.connection import connect_redis
from ris.jobs.tracker import JobTracker
from ris.search.filters import path_prefix, row_filter
from ris.search.image_search import ImageSearch
from ris.settings import Settings

THUMBNAIL_SIZES = (128, 256, 512)


class SearchService:
    """What the endpoints share: the search (its model loaded once), Milvus and Redis clients."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.index = open_index(settings)
        self.tracker = JobTracker(connect_redis(settings.redis_url))
        self.feature_cache = open_duplicates_cache(settings)
        # One inference at a time: the model already uses every core for one query.
        self.image_search = ImageSearch.from_settings(settings, self.index, threading.Lock())
        self.duplicate_runs = DuplicateRuns(self.find_duplicates)

    def close(self) -> None:
        self.duplicate_runs.close()
        self.image_search.close()
        self.index.close()
        if self.feature_cache is not None:
            self.feature_cache.close()

    def search(
        self, upload: bytes, top_k: int, where: RowFilter, min_score: float | None
    ) -> HttpSearchResponse:
        try:
            response = self.image_search(upload, top_k, where, min_score)
        except ImageDecodeError as error:
            raise HTTPException(400, f"not a usable image: {error}") from None
        return HttpSearchResponse(
            # Ids as strings: they are 63-bit, beyond what a JavaScript number holds exactly.
            results=[
                HttpHit(**{**result.as_dict(), "id": str(result.id)}) for result in response.results
            ],
            timings_ms=Timings(**response.timings_ms),
        )

    def find_duplicates(self, request: RunRequest, progress: Progress) -> HttpDuplicatesResponse:
        """One duplicate-group run over the collection (a DuplicateRuns' work)."""
        report = find_duplicates(
            self.index,
            self.image_search.remote,
            self.settings.max_pixels,
            request.min_score,
            request.verify,
            path_prefix(request.under) if request.under.strip() else "",
            on_progress=progress,
            cache=self.feature_cache,
            shared_features=request.shared_features,
            embed=self.image_search.embed_pictures,
        )
        groups = [
            HttpDuplicateGroup(
                group=group.group,
                images=[{**vars(image), "id": str(image.id)} for image in group.images],
            )
            for group in report.groups
        ]
        return HttpDuplicatesResponse(**{**report.as_dict(), "groups": groups})

    def duplicates(self, request: RunRequest) -> HttpDuplicatesResponse:
        """The groups of a run doing `request`, the one going on or a new one, once done."""
        run = self.duplicate_runs.start(request)
        run.finished.result()
        if run.exception is not None:
            raise run.exception
        if run.result is None:
            raise HTTPException(409, f"duplicate run {run.id} was {run.state}")
        return run.result

    def duplicate_run(self, run_id: str) -> DuplicateRun[HttpDuplicatesResponse]:
        run = self.duplicate_runs.get(run_id)
        if run is None:
            raise HTTPException(
                404,
                f"no duplicate run {run_id!r} (the service keeps the runs going on and the "
                f"newest {KEPT_RUNS} finished, until it restarts)",
            )
        return run

    def fetch_query(self, url: str) -> bytes:
        """A query image by URL, held to the upload limit and to RIS_ALLOWED_ROOTS (when set:
        the service must not fetch whatever address a client names)."""
        reason = refusal_reason(url, self.settings.allowed_root_list)
        if reason:
            raise HTTPException(400, f"{url}: {reason}")
        try:
            return self.image_search.remote.fetch(url)
        except FetchError as error:
            status = 413 if str(error).startswith("too large") else 400
            raise HTTPException(status, f"cannot read {url}: {error}") from None

    def stream(self, url: str) -> StreamingResponse:
        """An indexed object, streamed as it is read."""
        try:
            chunks = self.image_search.remote.stream(url)
        except FetchError as error:
            status = 404 if "404" in str(error) else 502
            raise HTTPException(status, f"cannot read {url}: {error}") from None
        media = mimetypes.guess_type(urlsplit(url).path)[0] or "application/octet-stream"
        return StreamingResponse(chunks, media_type=media)

    def indexed_path(self, image_id: int) -> str:
        path = self.index.get_paths([image_id]).get(image_id)
        if path is None:
            raise HTTPException(404, f"no indexed image with id {image_id}")
        return path

    def thumbnail(self, image_id: int, size: int) -> bytes:
        path = self.indexed_path(image_id)
        if is_url(path):
            try:
                data = self.image_search.remote.fetch(path)
            except FetchError as error:
                raise HTTPException(404, f"image {image_id}: {error}") from None
            return render_thumbnail(data, size, self.settings.max_pixels)
        try:
            mtime_ns = os.stat(path).st_mtime_ns
        except OSError:
            raise HTTPException(404, f"image {image_id} is indexed but its file is gone") from None
        return make_thumbnail(path, size, mtime_ns, self.settings.max_pixels)


@functools.lru_cache(maxsize=4096)
def make_thumbnail(path: str, size: int, mtime_ns: int, max_pixels: int) -> bytes:
    """A file's thumbnail, cached until the file's mtime changes."""
    return render_thumbnail(path, size, max_pixels)


def render_thumbnail(source: str | bytes, size: int, max_pixels: int) -> bytes:
    """A JPEG at most `size` pixels on a side, of a file or an object's bytes."""
    with open_image(source, max_pixels) as image:
        image.draft("RGB", (size, size))
        upright = ImageOps.exif_transpose(image)
        upright.thumbnail((size, size))
        buffer = io.BytesIO()
        upright.convert("RGB").save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


async def _read_limited(upload: UploadFile, limit: int) -> bytes:
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"upload larger than the limit of {limit} bytes")
    if not data:
        raise HTTPException(400, "empty upload")
    return data


# Module-level: FastAPI resolves the guard's annotations in this module's namespace.
BEARER = HTTPBearer(auto_error=False, description="a token made by `query token`")


def bearer_guard(grants: list[TokenGrant], collection: str) -> Callable[..., None]:
    """A dependency that lets a request through only with a token granted `collection`
    (401 without a known token, 403 with one for other collections); open without grants."""

    def guard(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> None:
        if not grants:
            return
        challenge = {"WWW-Authenticate": "Bearer"}
        if credentials is None:
            raise HTTPException(401, "a bearer token is required", headers=challenge)
        access = check(grants, credentials.credentials, collection)
        if access is Access.UNKNOWN_TOKEN:
            raise HTTPException(401, "unknown token", headers=challenge)
        if access is Access.OTHER_COLLECTION:
            raise HTTPException(403, f"this token may not search collection {collection!r}")

    return guard


def run_request(
    min_score: Annotated[
        float | None,
        Query(ge=-1.0, le=1.0, description="0.55 with verification, 0.9 without"),
    ] = None,
    verify: Annotated[bool, Query(description="check pairs by local features")] = True,
    under: Annotated[str, Query(description="only images under this folder or prefix")] = "",
    shared_features: Annotated[
        bool | None,
        Query(
            description="also check the pairs sharing many local features (the original "
            "of a small crop) and the pictures pasted in pictures, cut out (a "
            "screenshot's photo); by default up to 10,000 images"
        ),
    ] = None,
) -> RunRequest:
    """A duplicate run's parameters, as the endpoints take them."""
    return RunRequest(min_score, verify, under, shared_features)


def run_status(
    run: DuplicateRun[HttpDuplicatesResponse], with_result: bool = True
) -> HttpDuplicateRun:
    request = run.request
    return HttpDuplicateRun(
        id=run.id,
        state=run.state,
        min_score=request.min_score,
        verify=request.verify,
        under=request.under,
        shared_features=request.shared_features,
        stage=run.stage,
        done=run.done,
        total=run.total,
        seconds=run.seconds,
        asked_at=run.asked_at,
        error=run.error,
        result=run.result if with_result else None,
    )


def create_app(settings: Settings) -> FastAPI:
    """The HTTP API and the web page, over the collection the settings name. With
    RIS_API_TOKENS, everything but the page and /health needs a token for that collection."""
    holder: dict[str, SearchService] = {}
    authorized = [Depends(bearer_guard(parse_grants(settings.api_tokens), settings.collection))]

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        holder["service"] = SearchService(settings)
        yield
        holder["service"].close()

    app = FastAPI(title="Reverse image search", lifespan=lifespan)

    def service() -> SearchService:
        return holder["service"]

    @app.exception_handler(RisError)
    async def core_error(_: Any, error: RisError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=400)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return resources.files("query").joinpath("static/index.html").read_text()

    @app.post("/search", dependencies=authorized)
    async def search(
        image: Annotated[UploadFile | None, File(description="the query image")] = None,
        url: Annotated[
            str | None, Form(description="or the query image's URL (http(s), s3, gs)")
        ] = None,
        top_k: Annotated[int, Form(ge=1, le=100)] = 12,
        under: Annotated[
            list[str] | None, Form(description="only images under these folders or prefixes")
        ] = None,
        modified_since: Annotated[
            str | None, Form(description="only files modified at or after this date")
        ] = None,
        modified_before: Annotated[
            str | None, Form(description="only files modified before this date")
        ] = None,
        min_score: Annotated[float | None, Form(ge=-1.0, le=1.0)] = None,
    ) -> HttpSearchResponse:
        # Browsers send empty form fields for controls left blank: they mean "no filter".
        where = row_filter(
            [prefix for prefix in under or [] if prefix.strip()],
            modified_since or None,
            modified_before or None,
        )
        if (image is None) == (url is None or not url.strip()):
            raise HTTPException(400, "send either an image or a url")
        if image is not None:
            data = await _read_limited(image, settings.max_upload_bytes)
        else:
            data = await run_in_threadpool(service().fetch_query, (url or "").strip())
        return await run_in_threadpool(service().search, data, top_k, where, min_score)

    @app.get("/duplicates", dependencies=authorized)
    def duplicates(request: Annotated[RunRequest, Depends(run_request)]) -> HttpDuplicatesResponse:
        """Every group of near-duplicate images, the one to keep first, once found: seconds
        for hundreds of images, minutes for thousands (POST /duplicates/runs runs it in the
        background, with its progress). A run already doing the same is waited for."""
        return service().duplicates(request)

    @app.post("/duplicates/runs", dependencies=authorized, status_code=202)
    def start_duplicate_run(
        request: Annotated[RunRequest, Depends(run_request)],
    ) -> HttpDuplicateRun:
        """Find every group of near-duplicate images in the background (one run at a time,
        in the order asked): the run's id, to follow at GET /duplicates/runs/{id}. A run
        queued or running with the same parameters is given instead of a new one."""
        return run_status(service().duplicate_runs.start(request))

    @app.get("/duplicates/runs", dependencies=authorized)
    def duplicate_runs() -> list[HttpDuplicateRun]:
        """The runs kept (going on, and the newest 8 finished), the newest first, without
        their groups."""
        return [run_status(run, with_result=False) for run in service().duplicate_runs.all()]

    @app.get("/duplicates/runs/{run_id}", dependencies=authorized)
    def duplicate_run(run_id: str) -> HttpDuplicateRun:
        """A run's progress, and its groups once done."""
        return run_status(service().duplicate_run(run_id))

    @app.delete("/duplicates/runs/{run_id}", dependencies=authorized)
    def cancel_duplicate_run(run_id: str) -> HttpDuplicateRun:
        """Stop a run: a queued one never starts, a running one stops at its next progress
        report (within a second or so; its state says "cancelled" then)."""
        service().duplicate_runs.cancel(run_id)
        return run_status(service().duplicate_run(run_id))

    @app.get("/images/{image_id}", dependencies=authorized)
    def original(image_id: int) -> Response:
        path = service().indexed_path(image_id)
        return service().stream(path) if is_url(path) else FileResponse(path)

    @app.get("/images/{image_id}/thumbnail", dependencies=authorized)
    def thumbnail(image_id: int, size: Annotated[int, Query()] = 256) -> Response:
        if size not in THUMBNAIL_SIZES:
            raise HTTPException(400, f"size must be one of {THUMBNAIL_SIZES}")
        return Response(service().thumbnail(image_id, size), media_type="image/jpeg")

    @app.get("/health")
    def health() -> JSONResponse:
        # The model is loaded before the service answers at all; these can come and go.
        checks: dict[str, bool] = {}
        try:
            checks["redis"] = service().tracker.ping()
        except Exception:  # noqa: BLE001 - any failure means unhealthy
            checks["redis"] = False
        try:
            service().index.exists()
            checks["milvus"] = True
        except Exception:  # noqa: BLE001
            checks["milvus"] = False
        healthy = all(checks.values())
        return JSONResponse({"healthy": healthy, **checks}, status_code=200 if healthy else 503)

    @app.get("/stats", dependencies=authorized)
    def stats() -> dict[str, Any]:
        tracker = service().tracker
        jobs = [tracker.status(job) for job in tracker.recent_jobs(10)]
        cache = service().image_search.cache
        return {
            "collection": settings.collection,
            "images": service().index.count(),
            "jobs": [job.as_dict() for job in jobs if job is not None],
            # Entries of both searches' and duplicate groups' features; null when none are kept.
            "kept_features": None
            if cache is None
            else {"entries": len(cache), "bytes": cache.bytes},
        }

    return app
