"""The benchmark's way of timing processes run together (bench/model_sweep.py)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from bench.model_sweep import Span, run_together


def _fixed_spans(offset: float, _barrier: Any) -> list[Span]:
    """Two passes whose spans are known: the second is the shorter one."""
    return [(offset, offset + 1.0), (10.0 + offset, 10.5)]


def _exits(_barrier: Any) -> list[Span]:
    os._exit(3)


def test_a_pass_lasts_from_the_first_start_to_the_last_finish_and_the_best_counts() -> None:
    # Pass 1: 0.0 -> 1.25 (10 items in 1.25 s); pass 2: 10.0 -> 10.5 (in 0.5 s).
    rate = run_together(_fixed_spans, [(0.0,), (0.25,)], items_per_pass=10)
    assert rate == pytest.approx(20.0)


def test_a_measuring_process_that_dies_stops_the_measurement() -> None:
    with pytest.raises(RuntimeError, match="exited with 3"):
        run_together(_exits, [()], items_per_pass=1)
