"""`query`: find the indexed images most similar to an image."""

from __future__ import annotations

import os

import click
from rich.table import Table

from ris.models import get_model_spec
from ris.pipeline import EmbeddingPipeline
from ris.search import search_image
from ris.settings import load_settings
from ris.store import VectorStore
from ris_cli.common import configure_logging, one_line_errors, print_json, stdout, verbose_option


@click.group()
def main() -> None:
    """Search the image index. Settings come from RIS_* variables."""


@main.command()
@click.argument("image", type=click.Path(path_type=str))
@click.option("-k", "--top-k", default=5, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list on stdout, nothing else.")
@verbose_option
@one_line_errors
def search(image: str, top_k: int, as_json: bool, verbose: bool) -> None:
    """Print the TOP_K indexed images most similar to IMAGE: rank, similarity score, path."""
    configure_logging(verbose)
    if not os.path.exists(image):
        raise click.ClickException(f"{image}: no such file")
    if os.path.isdir(image):
        raise click.ClickException(f"{image}: is a directory, not an image")
    settings = load_settings()
    store = VectorStore(
        settings.milvus_uri,
        settings.collection,
        dim=get_model_spec(settings.model).dim,
        token=settings.milvus_token,
    )
    store.require_collection()
    results = search_image(image, EmbeddingPipeline(settings), store, top_k)
    if as_json:
        print_json([result.as_dict() for result in results])
        return
    table = Table(title=f"{len(results)} most similar to {image}", title_justify="left")
    table.add_column("rank", justify="right")
    table.add_column("score", justify="right")
    table.add_column("path", overflow="fold")
    for result in results:
        table.add_row(str(result.rank), f"{result.score:.4f}", result.path)
    stdout.print(table)
