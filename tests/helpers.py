"""Helpers several test modules share: real worker processes, CLI runs, copies of photos."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click import Command
from click.testing import CliRunner, Result

from ris.dev.workers import launch_workers as launch_local_workers
from ris.dev.workers import stop_workers
from ris.duplicates.groups import FEATURE_COUNT, FEATURE_SIDE
from ris.files.remote import Remote
from ris.search.verify import LocalFeatures, Pictures

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

__all__ = [
    "BIN",
    "REPO",
    "copy_photos",
    "headless_chromium",
    "indexed_collection",
    "invoke",
    "launch_workers",
    "set_env",
    "stop_workers",
]


def _without_root_file_access() -> list[str]:
    """A command prefix that drops root's power to read any file, so permissions apply."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]


def launch_workers(
    env: dict[str, str], count: int, log_dir: Path, name: str = "test"
) -> list[subprocess.Popen[bytes]]:
    """Real worker processes, started from the repository and, as root, without the capability
    to bypass file permissions, like a worker run as a service user."""
    return launch_local_workers(
        env, count, log_dir, name, command_prefix=_without_root_file_access(), cwd=REPO
    )


def set_env(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]
) -> None:
    """Variables for this process and for the workers and CLIs a test starts with `env`."""
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    env.update(variables)


def invoke(command: Command, *args: str) -> Result:
    """Run a CLI command in-process; it must succeed."""
    result = CliRunner().invoke(command, list(args))
    assert result.exit_code == 0, result.output
    return result


def copy_photos(photos: list[Path], root: Path, copies: int = 1) -> list[str]:
    """`copies` folders of the photos under `root` (set0/, set1/, ...); the sorted paths."""
    paths = []
    for copy in range(copies):
        for photo in photos:
            target = root / f"set{copy}" / photo.name
            target.parent.mkdir(parents=True, exist_ok=True)
            paths.append(str(shutil.copy(photo, target)))
    return sorted(paths)


@contextmanager
def headless_chromium() -> Iterator[Any]:
    """Debian's chromium driven by Playwright; the test is skipped without it, unless
    RIS_REQUIRE_BROWSER is set (as .ci/run does), when it fails."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("RIS_REQUIRE_BROWSER"):
            pytest.fail("RIS_REQUIRE_BROWSER is set but Debian's chromium is not installed")
        pytest.skip("no chromium here (apt-get install chromium); .ci/run installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=found,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


class CountingPictures(Pictures):
    """The product's pictures, counting the features extracted."""

    def __init__(self) -> None:
        super().__init__(Remote(), 10**8, FEATURE_SIDE, FEATURE_COUNT)
        self.extracted: list[str] = []

    def features(self, path: str) -> LocalFeatures | None:
        self.extracted.append(path)
        return super().features(path)


@contextmanager
def indexed_collection(url: str, name: str, pipeline: Any, paths: list[Path]) -> Iterator[Any]:
    """A Milvus collection `name` at `url` holding `paths` embedded by `pipeline` as a worker
    embeds them, flushed; dropped afterwards."""
    from ris.index.milvus import MilvusIndex
    from workers.ingest import process_batch

    index = MilvusIndex(url, name, dim=pipeline.dim)
    index.drop()
    try:
        process_batch([str(path) for path in paths], pipeline, index)
        index.flush()
        yield index
    finally:
        index.drop()
        index.close()
