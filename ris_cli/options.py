"""Options several commands share, declared once."""

from __future__ import annotations

import click


def _not_blank(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise click.BadParameter("must not be empty")
    return value


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON on stdout, nothing else."
)
wait_option = click.option("--wait", is_flag=True, help="Follow the job until it is searchable.")
timeout_option = click.option(
    "--timeout", type=float, default=None, metavar="S", help="Stop waiting after S seconds."
)
queue_option = click.option(
    "--queue",
    callback=_not_blank,
    metavar="NAME",
    help="Celery queue for this job (e.g. one only GPU workers consume); default RIS_QUEUE.",
)
collection_option = click.option(
    "--collection",
    callback=_not_blank,
    metavar="NAME",
    help="Milvus collection this job indexes into; default RIS_COLLECTION. Workers write "
    "where the job says.",
)
verbose_option = click.option("-v", "--verbose", is_flag=True, help="Log what happens.")
