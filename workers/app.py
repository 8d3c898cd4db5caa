"""The Celery application; configured from the settings when Celery first needs its config."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_process_init

from ris.jobs.contract import celery_config
from workers import runtime
from workers.sweep import LostTaskSweepStep

app = Celery("workers", include=["workers.tasks"])
app.steps["worker"].add(LostTaskSweepStep)


@app.on_configure.connect
def _configure(sender: Celery, **_: Any) -> None:
    sender.conf.update(celery_config(runtime.settings()))
    sender.conf.worker_consumer = "workers.consumer:DeadLetterConsumer"


@worker_process_init.connect
def _forget_inherited_clients(**_: Any) -> None:
    # gRPC channels and sockets do not survive fork: each pool process builds its own.
    runtime.reset()
    runtime.start_warm_up()
