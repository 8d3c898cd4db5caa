"""Measuring helpers: throughput timers, peak RSS and CPU time of process trees, sampled."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import psutil


@dataclass
class Rate:
    items: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0


def timed(items: int, work: Callable[[], object]) -> Rate:
    started = time.perf_counter()
    work()
    return Rate(items, time.perf_counter() - started)


class BackgroundThread:
    """Runs `_run` on a daemon thread while the `with` block lasts; `_stop` ends it."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


class PeakRss(BackgroundThread):
    """Samples the resident memory of processes (and their children) in a background thread."""

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.pids: list[int] = []
        self.peak_by_pid: dict[int, int] = {}
        super().__init__()

    def watch(self, pid: int) -> None:
        self.pids.append(pid)

    def current(self, pid: int) -> int:
        """RSS in bytes of `pid`'s largest process (a worker's pool child holds the model)."""
        try:
            root = psutil.Process(pid)
            processes = [root, *root.children(recursive=True)]
            return max(process.memory_info().rss for process in processes)
        except psutil.Error:
            return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in list(self.pids):
                self.peak_by_pid[pid] = max(self.peak_by_pid.get(pid, 0), self.current(pid))
            self._stop.wait(self.interval)

    def peak_mb(self, pid: int) -> float:
        return self.peak_by_pid.get(pid, 0) / 2**20


def process_tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


class CpuSampler(BackgroundThread):
    """CPU time of named groups of processes between `begin()` and `end()`, sampled in a
    background thread from entry, so a process that exits before `end()` still counts."""

    def __init__(self, interval: float = 0.2):
        self.interval = interval
        self.groups: dict[str, list[tuple[int, bool]]] = {}
        self._first: dict[tuple[int, float], float] = {}
        self._last: dict[tuple[int, float], float] = {}
        self._group_of: dict[tuple[int, float], str] = {}
        self._lock = threading.Lock()
        self.started = self.stopped = 0.0
        self._box_start = self._box_stop = psutil.cpu_times()
        super().__init__()

    def watch(self, group: str, pid: int, children: bool = True) -> None:
        with self._lock:
            self.groups.setdefault(group, []).append((pid, children))

    def _processes(self) -> list[tuple[str, psutil.Process]]:
        found = []
        for group, members in self.groups.items():
            for pid, children in members:
                tree = process_tree(pid) if children else process_tree(pid)[:1]
                found += [(group, process) for process in tree]
        return found

    def _sample(self) -> None:
        with self._lock:
            for group, process in self._processes():
                try:
                    key = (process.pid, process.create_time())
                    times = process.cpu_times()
                except psutil.Error:
                    continue
                self._last[key] = times.user + times.system
                self._group_of[key] = group

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def begin(self) -> None:
        """Start of the window: what each process has used so far is not counted."""
        self._sample()
        with self._lock:
            self._first = dict(self._last)
            self._box_start = psutil.cpu_times()
            self.started = time.time()

    def end(self) -> None:
        self._sample()
        with self._lock:
            self._box_stop = psutil.cpu_times()
            self.stopped = time.time()

    @property
    def wall(self) -> float:
        return self.stopped - self.started

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds each group used in the window."""
        used = dict.fromkeys(self.groups, 0.0)
        for key, group in self._group_of.items():
            used[group] += self._last[key] - self._first.get(key, 0.0)
        return used

    def cores(self) -> dict[str, float]:
        """Average cores each group used in the window (1.0 = one core busy throughout)."""
        return {group: seconds / self.wall for group, seconds in self.cpu_seconds().items()}

    def machine_busy(self) -> float:
        """The share of the machine's CPU (all cores, anyone's processes) busy in the window."""
        start, stop = self._box_start, self._box_stop
        total = sum(stop) - sum(start)
        idle = (stop.idle + stop.iowait) - (start.idle + start.iowait)
        return (total - idle) / total if total else 0.0


def merge_json(path: Path, figures: dict[str, Any]) -> None:
    """Add `figures` to the JSON object in `path` (created if missing): one file per bench run."""
    existing = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**existing, **figures}, indent=2))
