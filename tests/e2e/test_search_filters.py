"""Filtered and batched searches on a real collection: every combination of folders and dates
gives exactly the expected images, through the CLI and through `query serve`."""

from __future__ import annotations

import csv
import itertools
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from pydantic import TypeAdapter

from query.cli import main as query
from query.schemas import CliAnswer, HttpSearchResponse
from ris.dev.services import LocalMilvusLite, LocalQueryService
from ris.embedding.models import DEFAULT_MODEL, get_model_spec
from ris.embedding.pipeline import EmbeddingPipeline
from ris.index.milvus import MilvusIndex
from ris.settings import Settings
from workers.ingest import process_batch

pytestmark = pytest.mark.e2e
# A folder name with LIKE's wildcard characters: a prefix must match it literally.
FOLDERS = ("alpha", "beta", "gam_ma%")
DATES = ("2021-03-10", "2022-06-10", "2023-09-10")
UNDER = ((), ("alpha",), ("beta", "gam_ma%"))
SINCE = (None, "2022-01-01")
BEFORE = (None, "2023-01-01")
ANSWERS = TypeAdapter(list[CliAnswer])


@dataclass
class Collection:
    root: Path
    modified: dict[str, str]  # path -> the date its file was modified
    env: dict[str, str]
    url: str

    def expected(self, under: tuple[str, ...], since: str | None, before: str | None) -> set[str]:
        folders = [str(self.root / folder) + os.sep for folder in under]
        return {
            path
            for path, date in self.modified.items()
            if (not folders or any(path.startswith(folder) for folder in folders))
            and (since is None or date >= since)
            and (before is None or date < before)
        }


def options(under: tuple[str, ...], since: str | None, before: str | None, root: Path) -> list:
    arguments = [part for folder in under for part in ("--under", str(root / folder))]
    arguments += ["--modified-since", since] if since else []
    return arguments + (["--modified-before", before] if before else [])


@pytest.fixture(scope="module")
def collection(
    redis_server,
    milvus_server: LocalMilvusLite,
    photos: list[Path],
    model_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Collection]:
    """Nine photos, three to a folder, each folder's files dated on three different days."""
    root = tmp_path_factory.mktemp("filtered")
    modified = {}
    for number, photo in enumerate(photos[:9]):
        folder = root / FOLDERS[number // 3]
        folder.mkdir(exist_ok=True)
        path = str(shutil.copy(photo, folder / photo.name))
        date = DATES[number % 3]
        moment = datetime.fromisoformat(date + "T12:00:00").timestamp()
        os.utime(path, (moment, moment))
        modified[path] = date
    name = "filtered"
    index = MilvusIndex(milvus_server.url, name, dim=get_model_spec(DEFAULT_MODEL).dim)
    index.drop()
    process_batch(sorted(modified), EmbeddingPipeline(Settings(), model_path), index)
    index.flush()
    env = {
        **os.environ,
        "RIS_REDIS_URL": redis_server.url,
        "RIS_MILVUS_URI": milvus_server.url,
        "RIS_COLLECTION": name,
    }
    server = LocalQueryService(tmp_path_factory.mktemp("serve-filtered"), env).start(timeout=90)
    yield Collection(root, modified, env, server.url)
    server.stop()
    index.drop()


def cli_search(collection: Collection, *arguments: str) -> list[dict]:
    """`query search ... --json`, its output checked against the documented shape."""
    result = CliRunner().invoke(query, ["search", *arguments, "--json"], env=collection.env)
    assert result.exit_code == 0, result.output
    answers = list(json.loads(result.stdout))
    ANSWERS.validate_python(answers)
    return answers


def test_every_filter_combination_is_exact_through_the_cli(collection: Collection) -> None:
    query_image = next(iter(collection.modified))
    for under, since, before in itertools.product(UNDER, SINCE, BEFORE):
        filters = options(under, since, before, collection.root)
        (answer,) = cli_search(collection, query_image, "-k", "50", *filters)
        found = {result["path"] for result in answer["results"]}
        assert found == collection.expected(under, since, before), filters


def test_every_filter_combination_is_exact_through_the_http_api(collection: Collection) -> None:
    upload = Path(next(iter(collection.modified))).read_bytes()
    for under, since, before in itertools.product(UNDER, SINCE, BEFORE):
        fields: dict = {"top_k": "50", "under": [str(collection.root / f) for f in under]}
        fields |= {"modified_since": since} if since else {}
        fields |= {"modified_before": before} if before else {}
        response = httpx.post(
            f"{collection.url}/search", files={"image": ("q", upload)}, data=fields, timeout=60
        )
        assert response.status_code == 200, response.text
        HttpSearchResponse.model_validate(response.json())
        found = {result["path"] for result in response.json()["results"]}
        assert found == collection.expected(under, since, before), fields


def test_min_score_keeps_only_hits_at_least_that_similar(collection: Collection) -> None:
    query_image = next(iter(collection.modified))
    (everything,) = cli_search(collection, query_image, "-k", "50")
    scores = sorted(result["score"] for result in everything["results"])
    cut = (scores[3] + scores[4]) / 2
    (answer,) = cli_search(collection, query_image, "-k", "50", "--min-score", str(cut))
    kept = answer["results"]
    assert len(kept) == len(scores) - 4
    assert all(result["score"] >= cut or result["verified"] for result in kept)


def test_a_folder_of_queries_is_searched_in_one_run_with_one_answer_each(
    collection: Collection, tmp_path: Path
) -> None:
    table = tmp_path / "results.csv"
    (collection.root / "beta" / "notes.png").write_text("not an image")
    result = CliRunner().invoke(
        query,
        ["search", str(collection.root / "beta"), "-k", "2", "--json", "--csv", str(table)],
        env=collection.env,
    )
    (collection.root / "beta" / "notes.png").unlink()
    assert result.exit_code == 1  # one query could not be read; the others were answered
    answers = json.loads(result.stdout)
    ANSWERS.validate_python(answers)
    readable = sorted(p for p in collection.modified if p.startswith(str(collection.root / "beta")))
    assert [a["query"] for a in answers if "results" in a] == readable
    assert all(a["results"][0]["path"] == a["query"] for a in answers if "results" in a)
    (failed,) = [a for a in answers if "error" in a]
    assert failed["error"].endswith("notes.png: not an image (unrecognised format)")
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 2 * len(readable) + 1
    assert {row["query"] for row in rows if row["rank"] == "1"} == set(readable)


def test_a_date_that_does_not_parse_is_a_one_line_error_and_a_400(
    collection: Collection,
) -> None:
    query_image = next(iter(collection.modified))
    result = CliRunner().invoke(
        query, ["search", query_image, "--modified-since", "last week"], env=collection.env
    )
    assert result.exit_code == 1
    assert result.output.strip() == "Error: invalid date 'last week': use YYYY-MM-DD or " + (
        "YYYY-MM-DDTHH:MM[:SS]"
    )
    response = httpx.post(
        f"{collection.url}/search",
        files={"image": ("q", Path(query_image).read_bytes())},
        data={"modified_before": "soon"},
        timeout=60,
    )
    assert response.status_code == 400 and "invalid date 'soon'" in response.json()["detail"]
