"""`producer watch`: files created, changed, moved and deleted under a watched folder follow the
index while it runs; a file still being written waits; rescans catch what no event reported;
objects put, replaced and deleted under a watched S3 prefix (moto's server) follow each listing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import pytest

from producer.client import Producer
from producer.watch import Watcher
from query.cli import main as query
from ris.embedding.models import DEFAULT_MODEL, get_model_spec
from ris.files.changes import FileState
from ris.index.milvus import MilvusIndex
from ris.jobs.connection import connect_redis
from ris.jobs.tracker import JobTracker
from ris.settings import load_settings
from tests.helpers import BIN, REPO, invoke

pytestmark = pytest.mark.e2e


def _indexed(env: dict[str, str], root: Path | str) -> dict[str, FileState]:
    """What the index holds under `root`: path -> the file state it was embedded from."""
    index = MilvusIndex(
        env["RIS_MILVUS_URI"], env["RIS_COLLECTION"], dim=get_model_spec(DEFAULT_MODEL).dim
    )
    try:
        if not index.exists():
            return {}
        paths = dict(index.iter_paths(str(root)))
        states = index.get_file_states(list(paths))
        # A row deleted between the two calls is gone.
        return {path: states[key] for key, path in paths.items() if key in states}
    finally:
        index.close()


def _eventually(check: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the index did not follow the folder in time"
        time.sleep(0.3)


def _all_failures(env: dict[str, str]) -> dict[str, str]:
    tracker = JobTracker(connect_redis(env["RIS_REDIS_URL"]))
    failures: dict[str, str] = {}
    for job in tracker.recent_jobs(limit=100):
        failures.update(tracker.failures(job))
    return failures


@contextmanager
def _watch(
    env: dict[str, str], roots: list[Path | str], log_dir: Path, settle: float, rescan: float = 0
) -> Iterator[Path]:
    """`producer watch ROOT... --json` as a user runs it; stopped with Ctrl-C (SIGINT), which
    must end it cleanly. Yields the file its stdout goes to (one JSON object a line)."""
    out, err = log_dir / "watch.out", log_dir / "watch.err"
    variables = {
        **env,
        "RIS_WATCH_SETTLE_SECONDS": str(settle),
        "RIS_WATCH_RESCAN_SECONDS": str(rescan),
    }
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        process = subprocess.Popen(
            [str(BIN / "producer"), "watch", *map(str, roots), "--json"],
            env=variables,
            cwd=REPO,
            stdout=stdout,
            stderr=stderr,
        )
    try:
        yield out
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert code == 0, err.read_text()
    assert "stopped" in err.read_text()


def _events(out: Path) -> tuple[int, list[str]]:
    """(images enqueued, sorted paths pruned) from the watch's JSON lines so far."""
    events = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    sent = sum(event["enqueued"] for event in events if event["event"] == "enqueued")
    removed = [path for event in events if event["event"] == "pruned" for path in event["removed"]]
    return sent, sorted(removed)


def _expect_events(out: Path, expected: tuple[int, list[str]]) -> None:
    """The watch reports (images enqueued, paths pruned) soon: each line follows its action."""
    deadline = time.monotonic() + 5
    while (found := _events(out)) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    assert found == expected


def test_created_changed_moved_and_deleted_files_follow_the_index(
    ris_env, start_workers, photos: list[Path], tmp_path: Path
) -> None:
    root = tmp_path / "watched"
    (root / "sub").mkdir(parents=True)
    first = Path(shutil.copy(photos[0], root / "first.jpg"))
    second = Path(shutil.copy(photos[1], root / "sub" / "second.jpg"))
    start_workers(1)
    with _watch(ris_env, [root], tmp_path, settle=1.0) as out:
        # Present at start: the first scan sends them.
        _eventually(lambda: set(_indexed(ris_env, root)) == {str(first), str(second)})

        added = Path(shutil.copy(photos[2], root / "sub" / "added.png"))
        _eventually(lambda: str(added) in _indexed(ris_env, root))

        before = _indexed(ris_env, root)[str(first)]
        shutil.copy(photos[3], first)  # same path, another picture
        new_size = first.stat().st_size
        assert new_size != before.size
        _eventually(lambda: _indexed(ris_env, root)[str(first)].size == new_size)

        moved = root / "moved.jpg"
        os.rename(second, moved)
        added.unlink()
        expected = {str(first), str(moved)}
        _eventually(lambda: set(_indexed(ris_env, root)) == expected)

        sent, removed = _events(out)
    assert sent == 5  # first, second, added, first again, moved
    assert removed == sorted([str(added), str(second)])
    assert _all_failures(ris_env) == {}
    # Re-indexed means the new picture's vector, not just its new size.
    (answer,) = json.loads(invoke(query, "search", str(photos[3]), "--json", "-k", "1").stdout)
    assert answer["results"][0]["path"] == str(first)
    assert answer["results"][0]["score"] > 0.99


def test_a_file_still_being_written_is_not_sent_until_it_settles(
    ris_env, start_workers, photos: list[Path], tmp_path: Path
) -> None:
    root = tmp_path / "watched"
    root.mkdir()
    data = photos[4].read_bytes()
    target = root / "slow.jpg"
    start_workers(1)
    with _watch(ris_env, [root], tmp_path, settle=1.5) as out:
        time.sleep(2)  # the watch is up and its first (empty) scan done
        chunks = [data[i : i + len(data) // 8 + 1] for i in range(0, len(data), len(data) // 8 + 1)]
        with open(target, "wb") as handle:
            for chunk in chunks:  # 8 writes, 0.5 s apart: 4 s of writing, settle 1.5 s
                handle.write(chunk)
                handle.flush()
                time.sleep(0.5)
                assert _indexed(ris_env, root) == {}, "sent while still being written"
        _eventually(lambda: str(target) in _indexed(ris_env, root))
        assert _indexed(ris_env, root)[str(target)].size == len(data)
        time.sleep(2)  # nothing else follows
        assert _events(out) == (1, [])  # one job of one image, nothing pruned
    assert _all_failures(ris_env) == {}


def test_the_start_scan_and_the_periodic_rescan_catch_what_no_event_reported(
    ris_env, start_workers, photos: list[Path], tmp_path: Path
) -> None:
    """Without events (as on a network mount), the rescans alone keep the index in step."""
    root = tmp_path / "watched"
    root.mkdir()
    kept = Path(shutil.copy(photos[5], root / "kept.jpg"))
    gone = Path(shutil.copy(photos[6], root / "gone.jpg"))
    start_workers(1)
    producer = Producer(load_settings())
    watcher = Watcher(producer, [str(root)], settle_seconds=0.5, rescan_seconds=2, observe=False)
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop.is_set,))
    thread.start()
    try:
        _eventually(lambda: set(_indexed(ris_env, root)) == {str(kept), str(gone)})
        gone.unlink()
        late = Path(shutil.copy(photos[7], root / "late.jpg"))
        _eventually(lambda: set(_indexed(ris_env, root)) == {str(kept), str(late)})
    finally:
        stop.set()
        thread.join(30)
        producer.close_index()
    assert not thread.is_alive()


def test_an_s3_prefix_is_followed_by_listing_beside_a_folder_and_after_a_restart(
    s3_env, start_workers, photos: list[Path], tmp_path: Path
) -> None:
    """An S3 prefix reports no events: each listing (every 2 s) sends new and replaced objects
    and prunes deleted ones; a folder watched by the same command keeps its events; a restart
    catches up with what changed while it was stopped."""
    bucket, prefix = "watched", "s3://watched/set"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)

    def put(name: str, photo: Path) -> str:
        s3.put_object(Bucket=bucket, Key=f"set/{name}", Body=photo.read_bytes())
        return f"{prefix}/{name}"

    def delete(url: str) -> None:
        s3.delete_object(Bucket=bucket, Key=url.removeprefix(f"s3://{bucket}/"))

    first, second = put("first.jpg", photos[0]), put("second.jpg", photos[1])
    s3.put_object(Bucket=bucket, Key="elsewhere/out.jpg", Body=photos[2].read_bytes())
    folder = tmp_path / "folder"
    folder.mkdir()
    start_workers(1)
    with _watch(s3_env, [folder, prefix], tmp_path, settle=1.0, rescan=2) as out:
        _eventually(lambda: set(_indexed(s3_env, prefix)) == {first, second})
        _expect_events(out, (2, []))

        put("first.jpg", photos[3])  # the same key, another picture
        new_size = photos[3].stat().st_size
        assert new_size != photos[0].stat().st_size
        delete(second)
        added = put("added.png", photos[4])
        local = Path(shutil.copy(photos[5], folder / "local.jpg"))
        _eventually(
            lambda: (
                {url: state.size for url, state in _indexed(s3_env, prefix).items()}
                == {first: new_size, added: photos[4].stat().st_size}
            )
        )
        _eventually(lambda: set(_indexed(s3_env, folder)) == {str(local)})
        time.sleep(5)  # two more listings of nothing new: nothing sent again
        # first, second, first again, added, local; second pruned
        _expect_events(out, (5, [second]))

    delete(added)  # while stopped
    later = put("later.jpg", photos[6])
    with _watch(s3_env, [prefix], tmp_path, settle=1.0, rescan=2) as out:
        _eventually(lambda: set(_indexed(s3_env, prefix)) == {first, later})
        _expect_events(out, (1, [added]))
    assert _all_failures(s3_env) == {}
    (answer,) = json.loads(invoke(query, "search", str(photos[3]), "--json", "-k", "1").stdout)
    assert answer["results"][0]["path"] == first
    assert answer["results"][0]["score"] > 0.99
