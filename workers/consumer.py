"""A Celery consumer that keeps undeliverable messages as dead letters, with the reason."""

from __future__ import annotations

import logging
from typing import Any

from celery.worker.consumer import Consumer

from workers import runtime

log = logging.getLogger(__name__)


def dead_letter(reason: str, body: Any) -> None:
    """Record a message that will never be processed; never raise from here."""
    try:
        runtime.tracker().record_dead_letter(reason, body)
    except Exception:  # noqa: BLE001 - losing the record must not take the consumer down
        log.exception("could not record dead letter: %s", reason)


class DeadLetterConsumer(Consumer):
    """Celery's consumer, plus a dead-letter record for each message it has to drop."""

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        dead_letter(f"undecodable message ({message.content_type}): {exc}", message.body)
        super().on_decode_error(message, exc)

    def on_unknown_message(self, body: Any, message: Any) -> None:
        dead_letter("not a task message", body)
        super().on_unknown_message(body, message)

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        dead_letter(f"unknown task {message.headers.get('task')!r}", body)
        super().on_unknown_task(body, message, exc)

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        dead_letter(f"invalid task message: {exc}", body)
        super().on_invalid_task(body, message, exc)
