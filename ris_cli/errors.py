"""The one error printer of every command: whatever a user can cause becomes `Error: <line>`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ris.errors import RisError

F = TypeVar("F", bound=Callable[..., Any])


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or ["unknown error"])[0]


def one_line_errors(command: F) -> F:
    """Turn the core's typed errors, and file-system errors, into `Error: <one line>`, exit 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except RisError as error:
            raise click.ClickException(_first_line(str(error))) from None
        except OSError as error:
            # An output file that cannot be written, a folder that cannot be read.
            where = f"{error.filename}: " if error.filename else ""
            raise click.ClickException(where + _first_line(error.strerror or str(error))) from None

    return wrapper  # type: ignore[return-value]
