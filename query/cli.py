"""`query`: find the indexed images most similar to an image; measure retrieval quality."""

from __future__ import annotations

import os
from pathlib import Path

import click

from query.contact_sheet import contact_sheet
from query.render import results_table
from ris.index.milvus import open_index
from ris.search.image_search import ImageSearch
from ris.settings import load_settings
from ris_cli.errors import one_line_errors
from ris_cli.options import json_option, verbose_option
from ris_cli.output import configure_logging, print_json, stderr, stdout


@click.group()
def main() -> None:
    """Search the image index. Settings come from RIS_* variables."""


@main.command()
@click.argument("image", type=click.Path(path_type=str))
@click.option("-k", "--top-k", default=5, show_default=True, type=click.IntRange(1, 1000))
@json_option
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
    index = open_index(settings)
    index.require_collection()
    results = ImageSearch.from_settings(settings, index)(image, top_k).results
    if save is not None:
        contact_sheet(os.path.abspath(image), results, save, settings.max_pixels)
    if as_json:
        print_json([result.as_dict() for result in results])
        return
    stdout.print(results_table(image, results))


@main.command("eval")
@click.argument("dataset", type=click.Path(path_type=str))
@click.option("-k", "--top-k", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option(
    "--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Worker processes."
)
@click.option(
    "--embedded",
    is_flag=True,
    help="Start a private Redis and Milvus Lite for this run instead of RIS_REDIS_URL and "
    "RIS_MILVUS_URI.",
)
@json_option
@verbose_option
@one_line_errors
def evaluate(
    dataset: str, top_k: int, workers: int, embedded: bool, as_json: bool, verbose: bool
) -> None:
    """Measure retrieval quality on a labelled DATASET, through the whole pipeline.

    The gallery is indexed into a temporary collection by `producer enqueue` and real worker
    processes, every query is searched like `query search`, and the collection is dropped.
    Layouts: class folders (leave-one-out), gallery/<class>/ with queries/<class>/, or copy
    detection (gallery/, queries/ and truth.json mapping each query file to its original).
    """
    # Evaluation is tooling (local services, worker launchers): loaded only for this command.
    from rich.progress import track

    from query.render import evaluation_table
    from ris.evaluation.eval_sets import read_eval_set
    from ris.evaluation.run import evaluate as run_evaluation

    configure_logging(verbose)
    report = run_evaluation(
        read_eval_set(dataset),
        load_settings(),
        top_k,
        workers,
        embedded,
        progress=lambda queries: track(queries, description="searching", console=stderr),
    )
    if as_json:
        print_json(report.as_dict())
        return
    stdout.print(evaluation_table(report))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@one_line_errors
def serve(host: str, port: int) -> None:
    """Serve the search API and the web page, with the model loaded once and kept warm."""
    import uvicorn

    from query.service import create_app

    uvicorn.run(create_app(load_settings()), host=host, port=port, log_level="info")
