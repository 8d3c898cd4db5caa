"""`python -m ris_cli.convert [--check]`: convert RIS_MODEL into RIS_CACHE_DIR, print the path.

Beside the model it stores the quality gate's photos (36 sample photos at the model's input),
which a host's first start uses to choose its runtime and precision (ris.embedding.runtime).

Image builds run it once so workers start with both baked in; `--check` only verifies they
are there and readable, without PyTorch, as a runtime image has none.
"""

from __future__ import annotations

import os

import click

from ris.embedding.models import gate_images_path, get_model_spec, onnx_model_path
from ris.errors import ModelUnavailableError
from ris.settings import load_settings
from ris_cli.errors import one_line_errors


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--check", is_flag=True, help="Fail if not converted yet; never convert.")
@one_line_errors
def main(check: bool) -> None:
    """Convert RIS_MODEL to ONNX into RIS_CACHE_DIR (once) and print the file's path."""
    settings = load_settings()
    spec = get_model_spec(settings.model)
    if check:
        path = onnx_model_path(spec, settings.cache_dir)
        for needed in (path, gate_images_path(spec, settings.cache_dir)):
            if not os.access(needed, os.R_OK):
                raise ModelUnavailableError(f"{needed} is missing or unreadable")
    else:
        from ris.convert.export import ensure_onnx_model

        path = ensure_onnx_model(settings.model, settings.cache_dir)
    click.echo(path)


if __name__ == "__main__":
    main()
