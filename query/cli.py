"""`query`: find the indexed images most similar to an image; measure retrieval quality."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import click
from rich.progress import Progress, TaskID

from query.contact_sheet import contact_sheet
from query.render import audit_table, outcomes_json, results_table, write_results_csv
from ris.errors import ImageDecodeError
from ris.files.identity import display_path, is_url
from ris.files.scan import iter_image_paths
from ris.index.base import RowFilter
from ris.index.milvus import open_index
from ris.search.filters import row_filter
from ris.search.image_search import ImageSearch, SearchResponse
from ris.settings import load_settings
from ris_cli.errors import one_line_errors
from ris_cli.options import json_option, verbose_option
from ris_cli.output import configure_logging, print_json, progress_columns, stderr, stdout


@click.group()
def main() -> None:
    """Search the image index. Settings come from RIS_* variables."""


def _query_images(arguments: tuple[str, ...]) -> list[str]:
    """Files and URLs as given and the images inside folders, in a stable order."""
    images: list[str] = []
    for argument in arguments:
        if is_url(argument):
            images.append(argument)
            continue
        if not os.path.exists(argument):
            raise click.ClickException(f"{argument}: no such file")
        images.extend(iter_image_paths(argument) if os.path.isdir(argument) else [argument])
    if not images:
        raise click.ClickException(f"no image files in {', '.join(arguments)}")
    return images


def _search_all(
    search: ImageSearch,
    images: list[str],
    top_k: int,
    where: RowFilter,
    min_score: float | None,
) -> list[SearchResponse | ImageDecodeError]:
    """Every image searched in batches, with a progress bar when there are several."""
    outcomes: list[SearchResponse | ImageDecodeError] = []
    with Progress(*progress_columns("searching"), console=stderr, disable=len(images) == 1) as bar:
        task = bar.add_task("search", total=len(images))
        for batch in search.search_in_batches(images, top_k, where, min_score):
            outcomes += batch
            bar.advance(task, len(batch))
    return outcomes


@main.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("-k", "--top-k", default=5, show_default=True, type=click.IntRange(1, 1000))
@click.option(
    "--under",
    multiple=True,
    metavar="FOLDER",
    help="Only images under this folder (or URL prefix); repeat for several.",
)
@click.option("--modified-since", metavar="DATE", help="Only files modified at or after DATE.")
@click.option("--modified-before", metavar="DATE", help="Only files modified before DATE.")
@click.option(
    "--min-score",
    type=click.FloatRange(-1.0, 1.0),
    help="Drop hits less similar than this (a hit verified as a copy is kept).",
)
@json_option
@click.option(
    "--csv",
    "csv_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write every result as a row of a CSV file (query, rank, id, path, score, ...).",
)
@click.option(
    "--save",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a contact sheet (query and results with scores) to this PNG file.",
)
@verbose_option
@one_line_errors
def search(
    images: tuple[str, ...],
    top_k: int,
    under: tuple[str, ...],
    modified_since: str | None,
    modified_before: str | None,
    min_score: float | None,
    as_json: bool,
    csv_file: Path | None,
    save: Path | None,
    verbose: bool,
) -> None:
    """Print the TOP_K indexed images most similar to each of IMAGES (files, or folders of
    images): rank, similarity score, path. DATE is YYYY-MM-DD or YYYY-MM-DDTHH:MM, local time.

    Several queries are embedded and searched in batches.
    """
    configure_logging(verbose)
    queries = _query_images(images)
    if save is not None and len(queries) != 1:
        raise click.UsageError("--save draws the results of one query image; give only one")
    if save is not None and is_url(queries[0]):
        raise click.UsageError("--save draws a query file, not a URL")
    where = row_filter(under, modified_since, modified_before)
    settings = load_settings()
    index = open_index(settings)
    index.require_collection()
    with ImageSearch.from_settings(settings, index) as image_search:
        outcomes = _search_all(image_search, queries, top_k, where, min_score)
    if len(queries) == 1 and isinstance(outcomes[0], ImageDecodeError):
        raise outcomes[0]
    if save is not None and isinstance(outcomes[0], SearchResponse):
        contact_sheet(os.path.abspath(queries[0]), outcomes[0].results, save, settings.max_pixels)
    if csv_file is not None:
        write_results_csv(csv_file, queries, outcomes)
    if as_json:
        print_json(outcomes_json(queries, outcomes))
    else:
        for query, outcome in zip(queries, outcomes, strict=True):
            if isinstance(outcome, SearchResponse):
                stdout.print(results_table(display_path(query), outcome.results))
    failed = [str(outcome) for outcome in outcomes if isinstance(outcome, ImageDecodeError)]
    for reason in failed:
        stderr.print(f"query failed: {reason}", markup=False)
    if failed:
        raise SystemExit(1)


@main.command()
@click.option(
    "--sample",
    default=200,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Indexed rows to check, drawn at random.",
)
@json_option
@verbose_option
@one_line_errors
def audit(sample: int, as_json: bool, verbose: bool) -> None:
    """Check that indexed images can be found: a sample of rows searched by their stored vector
    and by their file (each should come back first), and the index's top 10 against exact
    search over every row. Rows that do not come back first are named."""
    from ris.search.audit import audit as run_audit

    configure_logging(verbose)
    settings = load_settings()
    index = open_index(settings)
    index.require_collection()
    with (
        ImageSearch.from_settings(settings, index) as image_search,
        stderr.status("auditing") as status,
    ):
        report = run_audit(index, image_search, sample, on_progress=status.update)
    if as_json:
        print_json(report.as_dict())
        return
    stdout.print(audit_table(report, settings.collection))


@main.command()
@click.option(
    "--min-score",
    type=click.FloatRange(-1.0, 1.0),
    help="Pairs less similar are not considered [default: 0.55 with verification, 0.9 without].",
)
@click.option(
    "--verify/--no-verify",
    default=True,
    show_default=True,
    help="Check each pair by local features (a crop, resize or edit of one picture); without "
    "it the score alone decides, which also groups different pictures that look alike.",
)
@click.option(
    "--shared-features/--no-shared-features",
    default=None,
    help="With verification, also check the pairs that share many local features whatever "
    "their vectors' score, and the pictures pasted in pictures (a screenshot's photo) cut out "
    "and searched: finds the originals of small crops and of photos shown in screenshots, "
    "and reads every picture [default: on up to 10,000 images].",
)
@click.option("--under", metavar="FOLDER", help="Only images under this folder (or URL prefix).")
@json_option
@click.option(
    "--save",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write a contact sheet per group into this folder (group-0001.png, ...).",
)
@verbose_option
@one_line_errors
def duplicates(
    min_score: float | None,
    verify: bool,
    shared_features: bool | None,
    under: str | None,
    as_json: bool,
    save: Path | None,
    verbose: bool,
) -> None:
    """Print every group of near-duplicate images in the collection: exact copies, re-encoded
    and resized copies, and crops and edits confirmed by local features. The image to keep
    (most pixels, then the largest file) comes first; the others show their similarity to it.

    Each image searches the collection for its nearest; nothing is compared all against all.
    """
    from query.contact_sheet import group_sheet
    from query.render import duplicates_json, duplicates_table
    from ris.duplicates.groups import find_duplicates, open_duplicates_cache
    from ris.embedding.pipeline import picture_embedder
    from ris.files.remote import Remote
    from ris.search.filters import path_prefix

    configure_logging(verbose)
    settings = load_settings()
    index = open_index(settings)
    index.require_collection()
    cache = open_duplicates_cache(settings) if verify else None
    with Progress(*progress_columns("{task.description}"), console=stderr) as bar:
        tasks: dict[str, TaskID] = {}

        def advance(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total, description=stage)

        report = find_duplicates(
            index,
            Remote(settings.fetch_options),
            settings.max_pixels,
            min_score,
            verify,
            path_prefix(under) if under is not None else "",
            on_progress=advance,
            cache=cache,
            shared_features=shared_features,
            embed=picture_embedder(settings),
        )
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
        for group in report.groups:
            group_sheet(group, save / f"group-{group.group:04d}.png", settings.max_pixels)
    if as_json:
        print_json(duplicates_json(report))
        return
    stdout.print(duplicates_table(report))
    if save is not None:
        stdout.print(f"{len(report.groups)} contact sheets in {save}", markup=False)


@main.command("features")
@click.option("--under", metavar="FOLDER", help="Only images under this folder (or URL prefix).")
@json_option
@verbose_option
@one_line_errors
def features(under: str | None, as_json: bool, verbose: bool) -> None:
    """Read every indexed image once and keep its local features (in RIS_FEATURE_CACHE_DIR), so
    that searches check RIS_VERIFY_KEPT_TOP more hits without reading them. Searches keep the
    features of the hits they read anyway; this does it for the whole collection ahead of them.
    Images kept already, and unchanged since, are not read again."""
    from query.render import keep_table
    from ris.search.filters import path_prefix
    from ris.search.keep_features import keep_search_features

    configure_logging(verbose)
    settings = load_settings()
    index = open_index(settings)
    index.require_collection()
    with Progress(*progress_columns("keeping local features"), console=stderr) as bar:
        task = bar.add_task("features", total=None)
        report = keep_search_features(
            settings,
            index,
            path_prefix(under) if under is not None else "",
            on_progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if as_json:
        print_json(report.as_dict())
        return
    stdout.print(keep_table(report))


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
@click.option(
    "--keep-features",
    is_flag=True,
    help="Keep the gallery's local features before searching, as `query features` does, so "
    "that searches check RIS_VERIFY_KEPT_TOP more hits.",
)
@json_option
@verbose_option
@one_line_errors
def evaluate(
    dataset: str,
    top_k: int,
    workers: int,
    embedded: bool,
    keep_features: bool,
    as_json: bool,
    verbose: bool,
) -> None:
    """Measure retrieval quality on a labelled DATASET, through the whole pipeline.

    The gallery is indexed into a temporary collection by `producer enqueue` and real worker
    processes, every query is searched like `query search`, and the collection is dropped.
    The searches keep hits' local features in a cache of their own, which starts empty.
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
        keep_features,
        progress=lambda queries: track(queries, description="searching", console=stderr),
    )
    if as_json:
        print_json(report.as_dict())
        return
    stdout.print(evaluation_table(report))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--no-auth",
    is_flag=True,
    help="Answer anyone who reaches the port, without RIS_API_TOKENS, even off loopback.",
)
@one_line_errors
def serve(host: str, port: int, no_auth: bool) -> None:
    """Serve the search API and the web page, with the model loaded once and kept warm.

    With RIS_API_TOKENS set, searches, images and stats need a bearer token (see `query token`).
    """
    import uvicorn

    from query.auth import parse_grants
    from query.service import create_app

    settings = load_settings()
    if not parse_grants(settings.api_tokens) and not no_auth and not _loopback(host):
        raise click.ClickException(
            f"RIS_API_TOKENS is empty: anyone reaching {host}:{port} could search the collection "
            "and download every indexed image. Set tokens (`query token`) or pass --no-auth."
        )
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@main.command()
@click.option(
    "--collection",
    "collections",
    multiple=True,
    metavar="NAME",
    help="A collection the token may search (repeatable); default: RIS_COLLECTION.",
)
@click.option("--all-collections", is_flag=True, help="The token may search every collection.")
@json_option
@one_line_errors
def token(collections: tuple[str, ...], all_collections: bool, as_json: bool) -> None:
    """Make an access token for `query serve`: the token to give to a client (shown only now)
    and the entry to add to RIS_API_TOKENS (its hash and collections; `;` between entries)."""
    from query.auth import ALL_COLLECTIONS, new_token

    scope = [ALL_COLLECTIONS] if all_collections else list(collections)
    secret, grant = new_token(scope or [load_settings().collection])
    if as_json:
        print_json({"token": secret, "entry": grant.entry()})
        return
    stdout.print(f"token (give it to the client; it is not kept anywhere): {secret}", markup=False)
    stdout.print(f"RIS_API_TOKENS entry: {grant.entry()}", markup=False)
