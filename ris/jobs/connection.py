"""Connecting to Redis, and turning redis-py's errors into the project's own."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from ris.errors import JobStoreError, RisError, ServiceUnavailableError

C = TypeVar("C", bound=type)


def connect_redis(url: str, outage_seconds: float = 120.0, probe: bool = True) -> redis.Redis:
    """A client that rides out a Redis restart of up to about `outage_seconds`.

    With `probe` (for commands a person runs), the first contact fails fast with a clear error
    instead: a wrong URL should not hang. Workers skip it and wait for Redis to come back.
    """
    if probe:
        try:
            with redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=5) as client:
                client.ping()
        except redis.RedisError as error:
            message = f"cannot reach Redis at {_redact(url)}: {error}"
            raise ServiceUnavailableError(message) from None
    backoff = ExponentialBackoff(cap=5.0, base=0.2)
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=3,
        socket_timeout=30,
        health_check_interval=30,
        retry=Retry(backoff, retries=max(1, int(outage_seconds / 5.0) + 5)),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )


def _redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user + ':' if user else ':'}***@{host}"


def translate(error: redis.RedisError) -> RisError:
    """An outage (connection lost, timeout) is transient; any other refusal is permanent."""
    if isinstance(error, redis.ConnectionError | redis.TimeoutError):
        return ServiceUnavailableError(f"Redis unavailable: {error}")
    return JobStoreError(f"Redis: {error}")


def _translating(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except redis.RedisError as error:
            raise translate(error) from None

    return wrapper


def redis_errors_translated(cls: C) -> C:
    """Class decorator: every public method raises the project's errors, never redis-py's."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(member):
            setattr(cls, name, _translating(member))
    return cls
