"""Which roots `producer watch` follows, and how: folders by events, URL prefixes by listing."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from producer.cli import main as producer
from producer.watch import split_roots
from ris.errors import RisError


def test_folders_and_url_prefixes_are_told_apart_and_normalised(tmp_path: Path) -> None:
    roots = [str(tmp_path / "."), "S3://Bucket/Set", "https://h/images/"]
    assert split_roots(roots, 2) == ([str(tmp_path)], ["s3://bucket/Set", "https://h/images/"])
    with pytest.raises(RisError, match="not a folder or URL"):
        split_roots([str(tmp_path / "missing")], 2)


def test_a_url_prefix_without_a_periodic_listing_is_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RIS_WATCH_RESCAN_SECONDS", "0")
    result = CliRunner().invoke(producer, ["watch", "s3://bucket/set"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: s3://bucket/set: a URL prefix is followed by listing it every"
        " RIS_WATCH_RESCAN_SECONDS; set it above 0\n"
    )
