"""Images by URL through fsspec (s3 via s3fs, gs via gcsfs, http(s)): listing with each object's
state, and fetching bytes with timeouts and bounded retries, failures named per object.

Credentials and endpoints come from each filesystem's own environment and configuration
(`AWS_*` and `~/.aws/` for s3, `GOOGLE_APPLICATION_CREDENTIALS` for gs); nothing here logs them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from ris.errors import ImageDecodeError, RisError
from ris.files.changes import FileState
from ris.files.identity import URL_SCHEMES, canonical_url, has_image_extension, url_scheme

log = logging.getLogger(__name__)
T = TypeVar("T")

UNREACHABLE = FileState(-1, -1, "")


class FetchError(ImageDecodeError):
    """An object that could not be read: not found, access denied, timed out, too large."""


@dataclass(frozen=True)
class FetchOptions:
    """How hard to try: seconds per request, retries after a transient failure, parallel
    requests, the largest object read."""

    timeout: float = 30.0
    retries: int = 2
    threads: int = 8
    max_bytes: int = 256 * 2**20


def _storage_options(scheme: str, options: FetchOptions) -> dict[str, Any]:
    """Timeouts for each filesystem, and no cached listings (a long-lived process must see
    changes); everything else (credentials, endpoints) from its own environment."""
    fresh = {"use_listings_cache": False}
    if scheme in ("http", "https"):
        import aiohttp

        return {
            **fresh,
            "client_kwargs": {"timeout": aiohttp.ClientTimeout(total=options.timeout)},
        }
    if scheme == "s3":
        return {
            **fresh,
            "config_kwargs": {
                "connect_timeout": options.timeout,
                "read_timeout": options.timeout,
                "retries": {"max_attempts": 1},
            },
        }
    return fresh


def filesystem(url: str, options: FetchOptions) -> tuple[Any, str]:
    """(fsspec filesystem, its path) for `url`; an unknown scheme or missing extra is refused."""
    scheme = url_scheme(url)
    if scheme not in URL_SCHEMES:
        raise RisError(f"{url}: unsupported URL scheme (use {', '.join(sorted(URL_SCHEMES))})")
    try:
        import fsspec

        return fsspec.core.url_to_fs(url, **_storage_options(scheme, options))
    except ImportError as error:
        raise RisError(f"{url}: {scheme}:// needs the `sources` extra ({error})") from None


def _mtime_ns(info: dict[str, Any]) -> int:
    value = info.get("LastModified") or info.get("Last-Modified") or info.get("updated")
    if isinstance(value, str):
        text = value
        try:
            value = parsedate_to_datetime(text)  # HTTP's Last-Modified
        except (TypeError, ValueError):
            try:
                value = datetime.fromisoformat(text.replace("Z", "+00:00"))  # gcs
            except ValueError:
                return 0
    return int(value.timestamp() * 1e9) if isinstance(value, datetime) else 0


def state_from_info(info: dict[str, Any]) -> FileState:
    """What a listing or a HEAD says of an object: size, modification time, ETag (or 0, "")."""
    etag = str(info.get("ETag") or info.get("etag") or "").strip('"')
    size = info.get("size")
    return FileState(int(size) if size is not None else -1, _mtime_ns(info), etag)


def same_state(current: FileState, indexed: FileState | None) -> bool:
    """An object is unchanged when its size and its ETag (both known) or mtime are the same."""
    if indexed is None or current == UNREACHABLE or current.size != indexed.size:
        return False
    if current.content_hash and indexed.content_hash:
        return current.content_hash == indexed.content_hash
    return current.mtime_ns == indexed.mtime_ns


def describe_fetch_error(error: BaseException, timeout: float) -> str:
    """One line for what went wrong reading an object, never with credentials in it."""
    status = getattr(error, "status", None) or getattr(error, "code", None)
    if isinstance(error, FileNotFoundError) or status == 404:
        return "not found (404)"
    if isinstance(error, PermissionError) or status in (401, 403):
        return f"access denied ({status or 403})"
    if isinstance(error, TimeoutError | asyncio.TimeoutError) or "Timeout" in type(error).__name__:
        return f"timed out after {timeout:g} s"
    if isinstance(status, int):
        return f"HTTP {status}"
    return f"cannot read: {type(error).__name__}"


def _transient(error: BaseException) -> bool:
    status = getattr(error, "status", None)
    if isinstance(status, int):
        return status == 429 or status >= 500
    if isinstance(error, FileNotFoundError | PermissionError | FetchError):
        return False
    return isinstance(error, OSError | TimeoutError | asyncio.TimeoutError) or (
        "Timeout" in type(error).__name__ or "Connect" in type(error).__name__
    )


class Remote:
    """Lists and reads objects by URL. Thread-safe; one per process (filesystems are cached)."""

    def __init__(self, options: FetchOptions | None = None):
        self.options = options or FetchOptions()
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _retrying(self, url: str, call: Callable[[], T]) -> T:
        """`call()` with bounded retries on transient errors; FetchError naming the reason."""
        for attempt in range(self.options.retries + 1):
            try:
                return call()
            except FetchError:
                raise
            except Exception as error:  # noqa: BLE001 - each filesystem raises its own kinds
                if attempt < self.options.retries and _transient(error):
                    time.sleep(0.5 * 2**attempt)
                    continue
                raise FetchError(describe_fetch_error(error, self.options.timeout)) from None
        raise AssertionError("unreachable")

    def state(self, url: str) -> FileState:
        """The object's state now (a HEAD); FetchError when it cannot be read."""
        fs, path = filesystem(url, self.options)
        return state_from_info(self._retrying(url, lambda: fs.info(path)))

    def fetch(self, url: str, max_bytes: int | None = None) -> bytes:
        """The object's bytes; FetchError (not found, access denied, timed out, too large)."""
        limit = max_bytes or self.options.max_bytes
        fs, path = filesystem(url, self.options)

        def read() -> bytes:
            with fs.open(path, "rb") as handle:
                data: bytes = handle.read(limit + 1)
            if len(data) > limit:
                raise FetchError(f"too large: more than {limit} bytes")
            return data

        return self._retrying(url, read)

    def stream(self, url: str, chunk: int = 2**20) -> Iterator[bytes]:
        """The object's bytes a chunk at a time; opened (FetchError: 404, 403, ...) before the
        iterator is returned, so a caller can answer with the reason before streaming."""
        fs, path = filesystem(url, self.options)
        handle = self._retrying(url, lambda: fs.open(path, "rb"))

        def chunks() -> Iterator[bytes]:
            with handle:
                while data := handle.read(chunk):
                    yield data

        return chunks()

    def pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.options.threads, thread_name_prefix="fetch")
            return self._pool

    def states(self, urls: list[str]) -> dict[str, FileState | str]:
        """Each URL's state, or the reason it cannot be read, asked concurrently."""
        futures = {url: self.pool().submit(self.state, url) for url in urls}
        results: dict[str, FileState | str] = {}
        for url, future in futures.items():
            try:
                results[url] = future.result()
            except (FetchError, RisError) as error:
                results[url] = str(error)
        return results

    def list_images(
        self, root: str, states: dict[str, FileState], missing_ok: bool = False
    ) -> Iterator[str]:
        """Canonical URLs of the images under `root` (an object or a prefix), a folder of the
        listing at a time; each one's state goes into `states` for change detection. A root
        that does not exist is an error, or empty with `missing_ok` (prune)."""
        fs, path = filesystem(root, self.options)
        try:
            info = self._retrying(root, lambda: fs.info(path))
        except FetchError as error:
            if missing_ok and str(error) == describe_fetch_error(FileNotFoundError(), 0):
                return
            raise RisError(f"{root}: {error}") from None
        if info.get("type") != "directory":
            url = canonical_url(root)
            states[url] = state_from_info(info)
            yield url
            return
        for _, _, files in fs.walk(path, detail=True):
            for name in sorted(files):
                entry = files[name]
                url = canonical_url(fs.unstrip_protocol(entry["name"]))
                if has_image_extension(url):
                    states[url] = state_from_info(entry)
                    yield url


def read_url_list(lines: Iterable[str]) -> Iterator[str]:
    """Canonical URLs from a list, one a line; blank lines and `#` comments are skipped."""
    for line in lines:
        text = line.strip()
        if text and not text.startswith("#"):
            yield canonical_url(text)


class ListedStates:
    """States of the URLs a job sends: taken from the listing when it gave them, else asked
    (a HEAD per URL, concurrently); each is handed out once, so memory follows the window."""

    def __init__(self, remote: Remote):
        self.remote = remote
        self.known: dict[str, FileState] = {}

    def __call__(self, urls: list[str]) -> dict[str, FileState]:
        states = {url: self.known.pop(url) for url in urls if url in self.known}
        missing = [url for url in urls if url not in states]
        for url, state in self.remote.states(missing).items():
            states[url] = state if isinstance(state, FileState) else UNREACHABLE
        return states
