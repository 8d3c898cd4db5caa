"""`producer watch`: folders followed by file-system events, debounced, with periodic rescans;
URL prefixes (s3://, gs://, http(s)://) followed by listing them at start and every rescan."""

from __future__ import annotations

import itertools
import logging
import os
import queue
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from producer.client import Producer
from producer.enqueue import EnqueueReport
from producer.prune import PruneReport, prune, prune_paths
from ris.errors import RisError
from ris.files.changes import file_state
from ris.files.identity import has_image_extension, is_url, normalise_path
from ris.files.remote import ListedStates, Remote
from ris.files.scan import iter_image_paths

log = logging.getLogger(__name__)

# What the watch reports as it goes: a job it enqueued, or rows it pruned.
Report = EnqueueReport | PruneReport
Change = tuple[str, str, bool]  # ("changed" | "gone", path, is a directory)


@dataclass
class _Pending:
    state: tuple[int, int] | None = None
    since: float = 0.0


@dataclass
class Settle:
    """Debounce: a file seen changing is ready once its size and mtime stayed the same for
    `seconds`; a file still being written keeps restarting its wait."""

    seconds: float
    clock: Callable[[], float] = time.monotonic
    pending: dict[str, _Pending] = field(default_factory=dict)

    def touch(self, path: str) -> None:
        """The file changed (an event, or a scan found it too fresh): wait for it again."""
        self.pending[path] = _Pending(since=self.clock())

    def poll(self) -> tuple[list[str], list[str]]:
        """(files settled since they last changed, files that vanished while waiting)."""
        now = self.clock()
        settled: list[str] = []
        vanished: list[str] = []
        for path, entry in list(self.pending.items()):
            state = file_state(path)
            if state == (-1, -1):
                vanished.append(path)
            elif state != entry.state:
                entry.state, entry.since = state, now
                continue
            elif now - entry.since < self.seconds:
                continue
            del self.pending[path]
            if state != (-1, -1):
                settled.append(path)
        return sorted(settled), vanished

    def is_fresh(self, path: str) -> bool:
        """True when the file was modified less than `seconds` ago (it may still be written)."""
        try:
            return time.time() - os.stat(path).st_mtime < self.seconds
        except OSError:
            return False


class _Inbox(FileSystemEventHandler):
    """Turns watchdog's events (on its own thread) into changes the watch loop drains."""

    def __init__(self) -> None:
        self.changes: queue.SimpleQueue[Change] = queue.SimpleQueue()

    def on_any_event(self, event: FileSystemEvent) -> None:
        source = os.fsdecode(event.src_path)
        if event.event_type in ("created", "modified", "closed") and not (
            event.is_directory and event.event_type != "created"
        ):
            self.changes.put(("changed", source, event.is_directory))
        elif event.event_type == "deleted":
            self.changes.put(("gone", source, event.is_directory))
        elif event.event_type == "moved":
            self.changes.put(("gone", source, event.is_directory))
            self.changes.put(("changed", os.fsdecode(event.dest_path), event.is_directory))

    def drain(self) -> Iterator[Change]:
        while True:
            try:
                yield self.changes.get_nowait()
            except queue.Empty:
                return


def split_roots(roots: Iterable[str], rescan_seconds: float) -> tuple[list[str], list[str]]:
    """(folders, URL prefixes) among `roots`, normalised. RisError for a root that is neither,
    and for URL roots without a periodic rescan (nothing would look at them again)."""
    folders: list[str] = []
    urls: list[str] = []
    for root in roots:
        if not is_url(root) and not os.path.isdir(root):
            raise RisError(f"{root}: not a folder or URL")
        (urls if is_url(root) else folders).append(normalise_path(root))
    if urls and not rescan_seconds:
        raise RisError(
            f"{urls[0]}: a URL prefix is followed by listing it every RIS_WATCH_RESCAN_SECONDS;"
            " set it above 0"
        )
    return folders, urls


class Watcher:
    """Keeps the index in step with folders and URL prefixes until stopped: a full scan (a
    listing, for URLs) at start and every `rescan_seconds` (0: only at start), folder events in
    between. New and changed images go through the same enqueuer as `producer enqueue`
    (unchanged ones skipped), gone ones are pruned. A rescan that fails after the first is
    logged and tried again at the next one; nothing is pruned from a failed listing."""

    def __init__(
        self,
        producer: Producer,
        roots: Iterable[str],
        settle_seconds: float,
        rescan_seconds: float,
        on_report: Callable[[Report], None] = lambda report: None,
        observe: bool = True,
    ):
        self.producer = producer
        self.folders, self.urls = split_roots(roots, rescan_seconds)
        self.roots = self.folders + self.urls
        self.remote = Remote(producer.settings.fetch_options)
        self.settle = Settle(settle_seconds)
        self.rescan_seconds = rescan_seconds
        self.on_report = on_report
        self.observe = observe and bool(self.folders)
        self.inbox = _Inbox()
        self.tick = min(0.5, settle_seconds / 4)
        self.unfinished: list[str] = []  # jobs sent and not yet seen done

    def run(self, should_stop: Callable[[], bool]) -> None:
        """Watch until `should_stop()` turns true; what is left then, a restart picks up."""
        observer = Observer()
        if self.observe:
            for root in self.folders:
                observer.schedule(self.inbox, root, recursive=True)
            observer.start()  # before the first scan, so nothing falls between the two
        try:
            next_rescan = 0.0
            while not should_stop():
                # A rescan waits for the jobs sent before it: what they carry is not indexed
                # yet, and would be sent again.
                if time.monotonic() >= next_rescan and not self._busy():
                    self._rescan(should_stop, first=next_rescan == 0.0)
                    interval = self.rescan_seconds or float("inf")
                    next_rescan = time.monotonic() + interval
                self._step(should_stop)
                time.sleep(self.tick)
        finally:
            if self.observe:
                observer.stop()
                observer.join()

    def _step(self, should_stop: Callable[[], bool]) -> None:
        """Take the events so far, send what settled, prune what is gone."""
        gone_files: list[str] = []
        for kind, path, is_directory in self.inbox.drain():
            if kind == "gone" and is_directory:
                self._report(prune(self.producer.index, path))
            elif kind == "gone":
                gone_files.append(path)
            elif is_directory:
                for found in iter_image_paths(path):
                    self.settle.touch(found)
            elif has_image_extension(path):
                self.settle.touch(path)
        settled, vanished = self.settle.poll()
        if settled:
            self._enqueue(settled, "watch", should_stop)
        gone = [path for path in gone_files + vanished if has_image_extension(path)]
        if gone:
            self._report(prune_paths(self.producer.index, gone, label="watch"))

    def _busy(self) -> bool:
        """True while a job this watch sent is not done."""
        tracker = self.producer.tracker
        self.unfinished = [
            job for job in self.unfinished if (status := tracker.status(job)) and not status.done
        ]
        return bool(self.unfinished)

    def _rescan(self, should_stop: Callable[[], bool], first: bool) -> None:
        """A full scan; one that fails after the first is logged and left to the next."""
        try:
            self._scan(should_stop)
        except (RisError, OSError) as error:
            if first:
                raise
            log.warning("rescan failed, trying again in %g s: %s", self.rescan_seconds, error)

    def _scan(self, should_stop: Callable[[], bool]) -> None:
        """Everything under the roots: changed images sent (fresh files wait), gone ones pruned
        (under a URL prefix: those its listing no longer holds)."""
        states = ListedStates(self.remote)
        listed: set[str] = set()
        files = (
            path
            for root in self.folders
            for path in iter_image_paths(root)
            if not self._defer_if_fresh(path)
        )
        objects = self._listing(states, listed)
        label = os.pathsep.join(self.roots)
        self._enqueue(itertools.chain(files, objects), label, should_stop, states)
        for root in self.roots:
            if should_stop():
                return
            exists: Callable[[str], bool] = listed.__contains__ if is_url(root) else os.path.exists
            self._report(prune(self.producer.index, root, exists=exists))

    def _listing(self, states: ListedStates, listed: set[str]) -> Iterator[str]:
        """The images under the URL roots, each one's state kept in `states`, and in `listed`."""
        for root in self.urls:
            for url in self.remote.list_images(root, states.known, missing_ok=True):
                listed.add(url)
                yield url

    def _defer_if_fresh(self, path: str) -> bool:
        """True for a file the settle wait holds (it sends it) or should hold (too fresh)."""
        if path in self.settle.pending:
            return True
        if self.settle.is_fresh(path):
            self.settle.touch(path)
            return True
        return False

    def _enqueue(
        self,
        paths: Iterable[str],
        label: str,
        should_stop: Callable[[], bool],
        states: ListedStates | None = None,
    ) -> None:
        """One job of `paths` (unchanged ones skipped), reported when it sent anything."""
        settings = self.producer.settings
        report = self.producer.enqueuer(remote_states=states).run(
            paths, label, settings.collection, should_stop=should_stop, model=settings.model
        )
        if report.enqueued:
            self.unfinished.append(report.job)
            self.on_report(report)

    def _report(self, report: PruneReport) -> None:
        if report.removed:
            self.on_report(report)
