"""`query`: find the indexed images most similar to an image."""

from __future__ import annotations

import os
from pathlib import Path

import click
from rich.table import Table

from query.contact_sheet import contact_sheet
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
@click.option(
    "--save",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a contact sheet (query and results with scores) to this PNG file.",
)
@verbose_option
@one_line_errors
def search(image: str, top_k: int, as_json: bool, save: Path | None, verbose: bool) -> None:
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
    if save is not None:
        contact_sheet(os.path.abspath(image), results, save, settings.max_pixels)
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


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@one_line_errors
def serve(host: str, port: int) -> None:
    """Serve the search API and the web page, with the model loaded once and kept warm."""
    import uvicorn

    from query.service import create_app

    uvicorn.run(create_app(load_settings()), host=host, port=port, log_level="info")
