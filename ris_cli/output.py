"""CLI output: consoles for tables (stdout) and progress (stderr), JSON, logging levels."""

from __future__ import annotations

import json
import logging
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False)


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # pymilvus logs a harmless gRPC error on every Milvus Lite insert; keep it out of CLI output.
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL if not verbose else logging.INFO)


def progress_columns(label: str) -> tuple[ProgressColumn, ...]:
    """A labelled bar with done/total and elapsed time, for long work on stderr."""
    return (TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
