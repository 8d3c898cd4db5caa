"""The `producer` command's entry point: keeps pyarrow out of the process, then runs the CLI."""

from __future__ import annotations

import sys

from ris.errors import RisError
from ris.settings import load_settings


def hide_pyarrow_unless_embedded() -> None:
    """Make `import pyarrow` fail in this process unless Milvus Lite runs in it.

    pymilvus imports pandas at module level, and pandas imports pyarrow whenever it is installed
    (Milvus Lite needs it): about 35 MB of the producer's memory. pandas runs without it, and
    talking to a Milvus server needs neither; only an in-process Milvus Lite (a `.db` URI) does.
    """
    try:
        embedded = load_settings().milvus_embedded
    except RisError:
        return  # the CLI reports the bad setting
    if not embedded:
        sys.modules.setdefault("pyarrow", None)  # type: ignore[arg-type]


def main() -> None:
    hide_pyarrow_unless_embedded()
    from producer.cli import main as cli

    cli()
