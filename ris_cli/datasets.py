"""`python -m ris_cli.datasets [NAME ...]`: build the missing evaluation datasets, print where."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import click

from ris.datasets import NAMES, dataset_path, is_ready
from ris.datasets.layout import read_manifest
from ris.settings import load_settings
from ris_cli.errors import one_line_errors
from ris_cli.output import stdout


def _summary(folder: Path) -> str:
    manifest = read_manifest(folder) or {}
    if "classes" in manifest:
        return f"{manifest['classes']} classes, {manifest['images']} images"
    return f"gallery {manifest.get('gallery')}, queries {manifest.get('queries')}"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("names", nargs=-1, type=click.Choice(NAMES), metavar="[NAME]...")
@click.option(
    "--cache-dir", type=click.Path(path_type=Path), help="Default: RIS_CACHE_DIR or ~/.cache/ris."
)
@one_line_errors
def main(names: tuple[str, ...], cache_dir: Path | None) -> None:
    """Build the missing evaluation datasets (default: all of them) and print where each is."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cache_dir = cache_dir or load_settings().cache_dir
    for name in names or NAMES:
        started = time.monotonic()
        built = not is_ready(name, cache_dir)
        folder = dataset_path(name, cache_dir)
        note = f" (built in {time.monotonic() - started:.0f} s)" if built else ""
        stdout.print(f"{name:16} {folder}  {_summary(folder)}{note}", markup=False)


if __name__ == "__main__":
    main()
