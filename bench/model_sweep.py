"""Model only: every runtime x precision x batch x process layout, each timed the same way.

Every cell runs in fresh processes (one with 2 threads, or two with 1 thread each, released
together by a barrier), on the same preprocessed images, for the same passes; the figure is the
best pass. So the best cell is a ceiling measured exactly as every other cell.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ris.embedding.runtime import Candidate, make_embedder

BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)
# (processes, threads per process) on this 2-core machine.
LAYOUTS = ((1, 2), (2, 1))
PASSES = 2
ROUNDS = 2  # each pass embeds the images this many times
Span = tuple[float, float]  # a pass's start and end, time.perf_counter()


@dataclass(frozen=True)
class Cell:
    runtime: str
    precision: str
    batch: int
    processes: int
    threads: int

    @property
    def label(self) -> str:
        return (
            f"{self.runtime}/{self.precision}, batch {self.batch}, "
            f"{self.processes} process{'es' if self.processes > 1 else ''} x "
            f"{self.threads} thread{'s' if self.threads > 1 else ''}"
        )


def _passes(cell: Cell, model_path: Path, images: np.ndarray, barrier: Any) -> list[Span]:
    embedder = make_embedder(
        Candidate(cell.runtime, cell.precision), model_path, cell.threads, cell.batch
    )
    embedder(images[: cell.batch])  # warm-up
    spans = []
    for _ in range(PASSES):
        barrier.wait()
        start = time.perf_counter()
        for _ in range(ROUNDS):
            embedder(images)
        spans.append((start, time.perf_counter()))
    return spans


def _child(work: Callable[..., list[Span]], arguments: tuple, barrier: Any, out: Any) -> None:
    out.put(work(*arguments, barrier))


def run_together(
    work: Callable[..., list[Span]], arguments: list[tuple], items_per_pass: int
) -> float:
    """Items/s of `work` run in one fresh process per entry of `arguments` at once: each
    process's passes start together at a barrier, and a pass lasts from the first start to
    the last finish; the best pass. `work(*entry, barrier)` returns its passes' spans."""
    context = multiprocessing.get_context("spawn")
    barrier, out = context.Barrier(len(arguments)), context.Queue()
    children = [
        context.Process(target=_child, args=(work, entry, barrier, out)) for entry in arguments
    ]
    for child in children:
        child.start()
    spans: list[list[Span]] = []
    while len(spans) < len(children):
        try:
            spans.append(out.get(timeout=5))
        except queue.Empty:
            failed = [child.exitcode for child in children if child.exitcode not in (None, 0)]
            if failed:
                raise RuntimeError(f"a measuring process exited with {failed[0]}") from None
    for child in children:
        child.join(60)
    passes = min(len(each) for each in spans)
    return max(
        items_per_pass / (max(s[i][1] for s in spans) - min(s[i][0] for s in spans))
        for i in range(passes)
    )


def measure_cell(cell: Cell, model_path: Path, images: np.ndarray) -> float:
    """Images/s of the whole layout: every process embeds the images ROUNDS times a pass."""
    return run_together(
        _passes,
        [(cell, model_path, images)] * cell.processes,
        cell.processes * ROUNDS * len(images),
    )


def sweep(
    model_path: Path,
    images: np.ndarray,
    candidates: list[Candidate],
    batches: tuple[int, ...] = BATCH_SIZES,
) -> list[dict[str, Any]]:
    rows = []
    for candidate in candidates:
        for processes, threads in LAYOUTS:
            for batch in batches:
                cell = Cell(candidate.runtime, candidate.precision, batch, processes, threads)
                ips = measure_cell(cell, model_path, images)
                rows.append({**asdict(cell), "ips": round(ips, 1)})
    return rows


def best(rows: list[dict[str, Any]], **only: object) -> dict[str, Any]:
    """The fastest row, among those matching `only` (e.g. runtime="onnxruntime")."""
    matching = [row for row in rows if all(row[key] == value for key, value in only.items())]
    return max(matching, key=lambda row: row["ips"])
