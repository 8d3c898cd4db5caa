"""Typed exceptions of the core; front ends turn them into one-line messages."""


class RisError(Exception):
    """Base class of every error the core raises on purpose."""


class ImageDecodeError(RisError):
    """One image could not be decoded; the message is the reason."""


class ModelUnavailableError(RisError):
    """The model cannot be loaded or converted here."""


class DeviceUnavailableError(RisError):
    """The requested inference device is not available on this host."""


class CollectionMissingError(RisError):
    """The Milvus collection does not exist yet."""


class CollectionMismatchError(RisError):
    """The collection holds vectors of another model (or dimension) than the one configured."""


class ServiceUnavailableError(RisError):
    """Redis or Milvus cannot be reached."""


class InvalidPayloadError(RisError):
    """A task message does not follow the task contract."""


class SettingsError(RisError):
    """An environment variable holds a value the setting cannot take."""
