"""What each entry point loads as a user runs it: runtime code only, never tooling or torch;
`query search` no Celery and no producer; the producer no model runtime."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TOOLING = ("ris.convert", "ris.datasets", "ris.evaluation", "ris.dev", "bench", "torch")
MODEL_RUNTIME = ("onnxruntime", "towhee", "cv2", "ris.embedding.pipeline", "ris.search")


def modules_loaded(code: str, env: dict[str, str], tmp_path: Path) -> set[str]:
    """Run `code` in a fresh interpreter; the modules it had loaded when it exited."""
    listing = tmp_path / "modules.json"
    write = f"open({str(listing)!r}, 'w').write(json.dumps(sorted(sys.modules)))"
    hook = f"import atexit, json, sys\natexit.register(lambda: {write})\n"
    finished = subprocess.run(
        [sys.executable, "-c", hook + code], env=env, capture_output=True, text=True
    )
    assert listing.exists(), finished.stderr
    return set(json.loads(listing.read_text()))


def offending(modules: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        name for name in modules if any(name == f or name.startswith(f + ".") for f in forbidden)
    )


@pytest.fixture
def worker_run(
    ris_env: dict[str, str], photos: list[Path], tmp_path: Path
) -> tuple[Path, set[str]]:
    """One photo indexed in the test's collection by a worker's runtime objects; the photo and
    the modules that process had loaded."""
    code = (
        "import workers.tasks\n"
        "from workers import runtime\n"
        "from workers.ingest import process_batch\n"
        f"result = process_batch([{str(photos[0])!r}], runtime.pipeline(), runtime.index())\n"
        "assert result.indexed, result.failures\n"
        "runtime.index().flush()\n"
    )
    return photos[0], modules_loaded(code, ris_env, tmp_path)


def test_a_worker_embedding_and_upserting_loads_no_tooling(
    worker_run: tuple[Path, set[str]],
) -> None:
    _, modules = worker_run
    assert "ris.embedding.pipeline" in modules and "celery" in modules
    assert offending(modules, TOOLING + ("producer", "query")) == []


SEARCHERS = {
    # `query search` from the command line: no Celery, no producer.
    "query search": (
        "from query.cli import main\nmain(['search', {photo!r}, '--json'])\n",
        TOOLING + ("celery", "producer", "workers"),
    ),
    # The Python API searching: not even click.
    "ris_api": (
        "from ris_api import Client\nClient().search({photo!r}, top_k=1)\n",
        TOOLING + ("celery", "click", "producer", "workers", "query"),
    ),
}


@pytest.mark.parametrize("searcher", SEARCHERS)
def test_searching_loads_no_tooling_no_celery_and_no_producer(
    searcher: str, worker_run: tuple[Path, set[str]], ris_env: dict[str, str], tmp_path: Path
) -> None:
    indexed_photo, _ = worker_run
    code, forbidden = SEARCHERS[searcher]
    modules = modules_loaded(code.format(photo=str(indexed_photo)), ris_env, tmp_path)
    assert "ris.search.image_search" in modules
    assert offending(modules, forbidden) == []


def test_the_producer_enqueueing_loads_no_tooling_and_no_model_runtime(
    ris_env: dict[str, str], photos: list[Path], tmp_path: Path
) -> None:
    code = (
        "import sys\n"
        f"sys.argv = ['producer', 'enqueue', {str(photos[0].parent)!r}, '--json']\n"
        "from producer.launch import main\nmain()\n"
    )
    modules = modules_loaded(code, ris_env, tmp_path)
    assert "celery" in modules and "producer.enqueue" in modules
    assert offending(modules, TOOLING + MODEL_RUNTIME + ("query", "workers")) == []
