"""How the query CLI shows results: ranked hits, duplicate groups, an evaluation's figures."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from query.schemas import CliAnswer, CliDuplicateGroup, CliHit, Timings
from ris.duplicates.groups import DuplicateReport
from ris.errors import ImageDecodeError
from ris.files.identity import display_path
from ris.search.image_search import SearchResponse, SearchResult

if TYPE_CHECKING:
    # Evaluation is tooling: `query search` never imports it.
    from ris.evaluation.run import EvalReport
    from ris.search.audit import AuditReport
    from ris.search.keep_features import KeepReport


CSV_COLUMNS = ("query", "rank", "id", "path", "score", "inliers", "verified", "error")


def outcomes_json(
    queries: list[str], outcomes: list[SearchResponse | ImageDecodeError]
) -> list[dict[str, Any]]:
    """One CliAnswer per query: its results and timings, or the reason it could not be read."""
    answers = []
    for query, outcome in zip(queries, outcomes, strict=True):
        if isinstance(outcome, SearchResponse):
            answer = CliAnswer(
                query=display_path(query),
                results=[
                    CliHit(**{**result.as_dict(), "path": display_path(result.path)})
                    for result in outcome.results
                ],
                timings_ms=Timings(**outcome.timings_ms),
            )
        else:
            answer = CliAnswer(query=display_path(query), error=str(outcome))
        # Only the fields that apply: results and timings, or the error.
        answers.append({k: v for k, v in answer.model_dump().items() if v is not None})
    return answers


def write_results_csv(
    destination: Path, queries: list[str], outcomes: list[SearchResponse | ImageDecodeError]
) -> None:
    """Every result as one row; a query that could not be read as one row with its error."""
    with open(destination, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for item in outcomes_json(queries, outcomes):
            if "error" in item:
                writer.writerow({"query": item["query"], "error": item["error"]})
            for result in item.get("results", []):
                writer.writerow({"query": item["query"], **result})


def results_table(image: str, results: list[SearchResult]) -> Table:
    """Rank, score and path; and what verification found, when it checked any hit."""
    checked = any(result.inliers is not None for result in results)
    table = Table(title=f"{len(results)} most similar to {image}", title_justify="left")
    table.add_column("rank", justify="right")
    table.add_column("score", justify="right")
    if checked:
        table.add_column("local matches", justify="right")
    table.add_column("path", overflow="fold")
    for result in results:
        row = [str(result.rank), f"{result.score:.4f}"]
        if checked:
            matches = "" if result.inliers is None else str(result.inliers)
            row.append(
                f"[bold green]{matches} verified[/bold green]" if result.verified else matches
            )
        table.add_row(*row, result.path)
    return table


def duplicates_json(report: DuplicateReport) -> list[dict[str, Any]]:
    """The groups as `query duplicates --json` prints them."""
    return [
        CliDuplicateGroup.model_validate(
            {
                "group": group.group,
                "images": [
                    {**vars(image), "path": display_path(image.path)} for image in group.images
                ],
            }
        ).model_dump()
        for group in report.groups
    ]


def duplicates_table(report: DuplicateReport) -> Table:
    """Every group, its images one per row, the one to keep first."""
    how = "verified by local features" if report.verify else "by score alone"
    table = Table(
        title=f"{len(report.groups)} groups of near-duplicates among {report.rows} images "
        f"({how}, score >= {report.min_score:.2f})",
        title_justify="left",
        caption=f"{report.candidate_pairs} candidate pairs ({report.shared_feature_pairs} by "
        f"shared local features, {report.pasted_pictures} pasted pictures cut out), "
        f"{report.verified_pairs} checked; "
        f"{report.read_pictures} pictures read, {report.cached_pictures} known from an "
        f"earlier run; {report.seconds.get('total', 0):.1f} s",
        caption_justify="left",
    )
    for column in ("group", "score", "size"):
        table.add_column(column, justify="right")
    table.add_column("path", overflow="fold")
    for group in report.groups:
        for position, image in enumerate(group.images):
            size = f"{image.width}x{image.height}" if image.width else "unreadable"
            table.add_row(
                str(group.group) if position == 0 else "",
                "keep" if position == 0 else f"{image.score:.4f}",
                size,
                display_path(image.path),
                end_section=position == len(group.images) - 1,
            )
    return table


def evaluation_table(report: EvalReport) -> Table:
    """The report as a two-column table: what was measured, and the figure."""
    rows = [
        ("model", report.model),
        ("spatial verification", _verification(report)),
        ("gallery images (indexed / failed)", f"{report.indexed} / {report.failed}"),
        ("queries (failed to read)", f"{report.queries} ({report.failed_queries})"),
        *[(name, f"{value:.4f}") for name, value in report.metrics.items()],
        ("ingestion, images/s", f"{report.ingest_images_per_s:.1f}"),
        *(
            [("local features kept, images/s", f"{report.keep_images_per_s:.1f}")]
            if report.kept_features
            else []
        ),
        ("queries/s (embed + search + verify)", f"{report.queries_per_s:.1f}"),
    ]
    if report.unanswerable:
        rows.insert(3, ("queries left out (no right answer)", str(report.unanswerable)))
    return measures_table(f"{report.dataset} ({report.layout})", rows)


def measures_table(title: str, rows: list[tuple[str, str]]) -> Table:
    """A two-column table: what was measured, and the figure."""
    table = Table(title=title, title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    return table


def _verification(report: EvalReport) -> str:
    if not report.verify_top:
        return "off"
    kept = f", then {report.verify_kept_top} more if kept" if report.verify_kept_top else ""
    pasted = ", then its pasted pictures'" if report.verify_pasted else ""
    centre = ", then the query's centre's" if report.verify_centre else ""
    weak = "; 4-9 agreeing features checked pixel for pixel" if report.verify_weak else ""
    region = "; else a weak hit whose aligned part the model knows" if report.verify_region else ""
    frames = "; else the nearest 5 compared frame to frame" if report.verify_frames else ""
    nearest = "; else a pasted picture's nearest if nearer" if report.pasted_nearest else ""
    return f"top {report.verify_top}{kept}{pasted}{centre}{weak}{region}{frames}{nearest}"


def audit_table(report: AuditReport, collection: str) -> Table:
    """The audit's figures, then every sampled row that did not come back first."""
    table = measures_table(
        f"findability of {collection}",
        [
            ("rows in the collection", f"{report.rows}"),
            ("rows sampled", f"{report.sampled}"),
            ("found first by their stored vector", f"{report.self_rank1:.4f}"),
            ("found first by their file", f"{report.self_rank1_by_file:.4f}"),
            ("top 10 against exact search (recall@10)", f"{report.recall_at_10:.4f}"),
            ("files that could not be read", f"{report.files_unreadable}"),
        ],
    )
    for row in report.unfound:
        by_vector = "absent" if row.rank_by_vector is None else f"rank {row.rank_by_vector}"
        by_file = "absent" if row.rank_by_file is None else f"rank {row.rank_by_file}"
        table.add_row(f"not found first: {display_path(row.path)}", f"{by_vector} / {by_file}")
    return table


def keep_table(report: KeepReport) -> Table:
    """What `query features` found kept, extracted, and what the cache now takes."""
    return measures_table(
        f"local features kept in {report.directory}",
        [
            ("rows", f"{report.rows}"),
            ("already kept", f"{report.already_kept}"),
            ("read and kept now", f"{report.extracted - report.unreadable}"),
            ("could not be read", f"{report.unreadable}"),
            ("time", f"{report.seconds:.1f} s"),
            ("cache size on disk", f"{report.cache_bytes / 1e6:.1f} MB"),
        ],
    )
