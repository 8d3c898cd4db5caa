"""A worker bootstep that sends again the tasks the broker lost (ris/jobs/lost_tasks.py)."""

from __future__ import annotations

import logging
from typing import Any

from celery import bootsteps

from ris.jobs.connection import connect_redis
from ris.jobs.lost_tasks import LostTaskSweep
from ris.jobs.tracker import JobTracker, SentTask
from workers import runtime

log = logging.getLogger(__name__)


class LostTaskSweepStep(bootsteps.StartStopStep):
    """Every half `RIS_LOST_TASK_SECONDS`, one worker of the fleet (whichever takes the lock)
    compares the ledger of tasks sent with what the broker holds, on the worker's timer."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, **kwargs: Any):
        super().__init__(worker, **kwargs)
        self.tref: Any = None
        self.app = worker.app
        self.grace = runtime.settings().lost_task_seconds
        self.interval = max(1.0, self.grace / 2)

    def include_if(self, worker: Any) -> bool:
        return self.grace > 0

    def start(self, worker: Any) -> None:
        # Its own client, quick to give up: the sweep runs on the worker's event loop, which a
        # client riding out a Redis outage would hold for minutes. The next interval retries.
        client = connect_redis(runtime.settings().redis_url, outage_seconds=0, probe=False)
        self.sweep = LostTaskSweep(JobTracker(client), self.grace, self._send)
        self.tref = worker.timer.call_repeatedly(self.interval, self._run, priority=10)

    def stop(self, worker: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    def _send(self, task: SentTask) -> None:
        self.app.send_task(task.task, args=[task.argument], queue=task.queue, task_id=task.task_id)

    def _run(self) -> None:
        try:
            self.sweep.try_sweep(self.interval)
        except Exception as error:  # noqa: BLE001 - an outage now is looked at again next time
            log.info("lost-task sweep skipped: %s", error)
