"""Typed exceptions of the core; front ends turn them into one-line messages.

Errors from outside (pymilvus, redis, Celery's broker) are translated where they are caught
into one of two kinds: a `TransientError` is an outage worth riding out (the work is retried or
redelivered, never failed); any other `RisError` is permanent (the reason is recorded, the work
is not tried again).
"""


class RisError(Exception):
    """Base class of every error the core raises on purpose."""


class TransientError(RisError):
    """An outage that may end by itself: retry later, lose nothing."""


class ServiceUnavailableError(TransientError):
    """Redis or Milvus cannot be reached."""


class ImageDecodeError(RisError):
    """One image could not be decoded; the message is the reason."""


class ModelUnavailableError(RisError):
    """The model cannot be loaded or converted here."""


class DeviceUnavailableError(RisError):
    """The requested inference device is not available on this host."""


class CollectionMissingError(RisError):
    """The Milvus collection does not exist yet."""


class ModelMismatchError(RisError):
    """A batch was enqueued for another model than the one this worker runs."""


class CollectionMismatchError(RisError):
    """The collection holds vectors of another model (or dimension) than the one configured."""


class IndexRequestError(RisError):
    """The vector index refused a request for a reason that retrying cannot fix."""


class JobStoreError(RisError):
    """Redis refused a job-bookkeeping command for a reason that retrying cannot fix."""


class JobNotFoundError(RisError):
    """No job record under that id (never created, or expired)."""


class InvalidPayloadError(RisError):
    """A task message does not follow the task contract."""


class SettingsError(RisError):
    """An environment variable holds a value the setting cannot take."""


class FeatureCacheError(RisError):
    """Local features cannot be kept: the cache is turned off or cannot be opened."""
