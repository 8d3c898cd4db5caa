"""Shared CLI plumbing: one-line errors, consoles for tables (stdout) and progress (stderr)."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import click
from pymilvus import MilvusException
from rich.console import Console

from ris.errors import RisError

F = TypeVar("F", bound=Callable[..., Any])

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False)


def one_line_errors(command: F) -> F:
    """Turn the core's typed errors into `Error: <one line>` and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except RisError as error:
            raise click.ClickException(str(error).splitlines()[0]) from None
        except MilvusException as error:
            raise click.ClickException(f"Milvus: {error.message}".splitlines()[0]) from None

    return wrapper  # type: ignore[return-value]


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # pymilvus logs a harmless gRPC error on every Milvus Lite insert; keep it out of CLI output.
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL if not verbose else logging.INFO)


verbose_option = click.option("-v", "--verbose", is_flag=True, help="Log what happens.")
