"""The worker's lost-task sweep step: on by default, every half grace, off at 0."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from workers import runtime
from workers.sweep import LostTaskSweepStep


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    runtime.reset()
    yield
    runtime.reset()


def step() -> LostTaskSweepStep:
    return LostTaskSweepStep(SimpleNamespace(app=None))


def test_the_sweep_runs_every_half_grace_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RIS_LOST_TASK_SECONDS", raising=False)
    sweep = step()
    assert sweep.include_if(None) and (sweep.grace, sweep.interval) == (60.0, 30.0)


def test_a_short_grace_is_swept_at_least_a_second_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIS_LOST_TASK_SECONDS", "1")
    assert step().interval == 1.0


def test_zero_turns_the_sweep_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIS_LOST_TASK_SECONDS", "0")
    assert not step().include_if(None)
