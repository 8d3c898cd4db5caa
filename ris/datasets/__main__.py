"""`python -m ris.datasets [NAME ...]`: build the missing datasets, then print where each is."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from ris.datasets import NAMES, dataset_path, is_ready
from ris.datasets.layout import read_manifest
from ris.errors import RisError


def _summary(name: str, folder: Path) -> str:
    manifest = read_manifest(folder) or {}
    if "classes" in manifest:
        return f"{manifest['classes']} classes, {manifest['images']} images"
    return f"gallery {manifest.get('gallery')}, queries {manifest.get('queries')}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ris.datasets", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"default: all of {', '.join(NAMES)}"
    )
    parser.add_argument("--cache-dir", type=Path, help="default: RIS_CACHE_DIR or ~/.cache/ris")
    arguments = parser.parse_args(argv)
    unknown = [name for name in arguments.names if name not in NAMES]
    if unknown:
        parser.error(f"unknown dataset {unknown[0]!r}; choose from {', '.join(NAMES)}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cache_dir = arguments.cache_dir
    if cache_dir is None:
        from ris.settings import Settings

        cache_dir = Settings().cache_dir
    for name in arguments.names or NAMES:
        started = time.monotonic()
        built = not is_ready(name, cache_dir)
        try:
            folder = dataset_path(name, cache_dir)
        except RisError as error:
            print(f"Error: {error}", file=sys.stderr)
            return 1
        note = f" (built in {time.monotonic() - started:.0f} s)" if built else ""
        print(f"{name:16} {folder}  {_summary(name, folder)}{note}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
