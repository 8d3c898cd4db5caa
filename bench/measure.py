"""Measuring helpers: throughput timers and peak RSS of whole process trees, sampled."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

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


class PeakRss:
    """Samples the resident memory of processes (and their children) in a background thread."""

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.pids: list[int] = []
        self.peak_by_pid: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

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

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
