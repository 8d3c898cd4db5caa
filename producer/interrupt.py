"""Ctrl-C during a scan: the first stops after the current batch, a second aborts at once."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from ris_cli.output import stderr


class StopFlag:
    """Set by the first Ctrl-C; a second Ctrl-C aborts at once."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested


@contextmanager
def stop_on_interrupt() -> Iterator[StopFlag]:
    flag = StopFlag()
    previous = signal.getsignal(signal.SIGINT)

    def handle(signum: int, frame: FrameType | None) -> None:
        flag.requested = True
        stderr.print("stopping after the current batch; Ctrl-C again to abort")
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, handle)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
