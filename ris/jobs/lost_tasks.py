"""Tasks the broker lost, found and sent again: in the ledger of tasks sent and not yet done,
yet neither waiting in their queue nor held unacknowledged by a worker, sweep after sweep.

Kombu's Redis transport pops a message (BRPOP) and only then records it as unacknowledged, in a
second command: a message popped at the instant Redis stops is in neither place, and its
visibility timeout cannot bring it back. The ledger can (README, "Nothing lost").
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any, cast

from ris.jobs.tracker import KEY_PREFIX, JobTracker, SentTask

log = logging.getLogger(__name__)

# Task id -> when a sweep first found it missing (Redis time, seconds).
MISSING_KEY = f"{KEY_PREFIX}:sent:missing"
# Held by the worker sweeping: one sweep per interval across the fleet.
SWEEP_LOCK_KEY = f"{KEY_PREFIX}:sent:sweep"
# Where kombu's Redis transport keeps unacknowledged messages (its default `unacked_key`).
UNACKED_KEY = "unacked"


def message_task_id(message: Any) -> str | None:
    """The task id of a Celery message as the Redis transport stores it; None if it has none."""
    if not isinstance(message, dict):
        return None
    headers = message.get("headers") or {}
    properties = message.get("properties") or {}
    task_id = headers.get("id") or properties.get("correlation_id")
    return task_id if isinstance(task_id, str) else None


def _parsed(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


class LostTaskSweep:
    """Finds the ledger's tasks that the broker no longer holds, and sends again those missing
    for `grace_seconds` or more. The grace covers a message between two places: popped and not
    yet recorded as unacknowledged (milliseconds), or on its way back to its queue."""

    def __init__(
        self,
        tracker: JobTracker,
        grace_seconds: float,
        send: Callable[[SentTask], None],
        unacked_key: str = UNACKED_KEY,
    ):
        self.tracker = tracker
        self.redis = tracker.redis
        self.grace_seconds = grace_seconds
        self.send = send
        self.unacked_key = unacked_key

    def try_sweep(self, interval_seconds: float) -> list[SentTask]:
        """Sweep unless another worker did within `interval_seconds`; the tasks sent again."""
        if not self.redis.set(SWEEP_LOCK_KEY, 1, nx=True, px=max(1, int(interval_seconds * 1000))):
            return []
        return self.sweep()

    def sweep(self) -> list[SentTask]:
        """One look at the broker; the tasks sent again."""
        # The ledger first, then the queues, then the unacknowledged: a task moves the other
        # way (sent, queued, popped), so one that moves during the look is still seen.
        sent = self.tracker.sent_tasks()
        if not sent:
            self.redis.delete(MISSING_KEY)
            return []
        held = self._held({task.queue for task in sent.values()})
        seconds, micros = cast(tuple[int, int], self.redis.time())
        now = seconds + micros / 1e6
        missing = sent.keys() - held
        since = {
            key.decode(): float(value)
            for key, value in cast(dict[bytes, bytes], self.redis.hgetall(MISSING_KEY)).items()
        }
        lost = [
            sent[key] for key in sorted(missing) if now - since.get(key, now) >= self.grace_seconds
        ]
        pipe = self.redis.pipeline()
        found_again = [key for key in since if key not in missing]
        if found_again:
            pipe.hdel(MISSING_KEY, *found_again)
        newly_missing = {key: now for key in missing if key not in since}
        if newly_missing:
            pipe.hset(MISSING_KEY, mapping=cast(Any, newly_missing))
        pipe.execute()
        resent = []
        for task in lost:
            if not self.tracker.is_sent(task.task_id):
                continue  # done since the ledger was read
            if self.tracker.is_done(task):
                self.tracker.forget_sent(task.task_id)
                self.redis.hdel(MISSING_KEY, task.task_id)
                continue
            log.warning(
                "task %s (%s) lost by the broker: neither queued nor held by a worker for %.0f s;"
                " sending it again",
                task.task_id,
                task.task,
                now - since[task.task_id],
            )
            self.send(task)
            self.redis.hdel(MISSING_KEY, task.task_id)
            resent.append(task)
        return resent

    def _held(self, queues: Iterable[str]) -> set[str]:
        """Task ids of the messages waiting in `queues` or held unacknowledged by workers."""
        # Each queue in one reply, a consistent snapshot: the producer bounds its length.
        messages = [
            _parsed(raw)
            for queue in queues
            for raw in cast(list[bytes], self.redis.lrange(queue, 0, -1))
        ]
        # An unacknowledged entry is [message, exchange, routing key].
        for raw in cast(list[bytes], self.redis.hvals(self.unacked_key)):
            entry = _parsed(raw)
            messages.append(entry[0] if isinstance(entry, list) and entry else None)
        return {task_id for message in messages if (task_id := message_task_id(message))}
