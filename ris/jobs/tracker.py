"""Job records in Redis: per-job counters, failure reasons, exactly-once batch accounting, and
the ledger of tasks sent and not yet done (see ris/jobs/lost_tasks.py)."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any, cast

import redis

from ris.errors import JobNotFoundError
from ris.files.identity import path_bytes
from ris.jobs.connection import redis_errors_translated
from ris.jobs.contract import FINALIZE_TASK, INGEST_TASK

KEY_PREFIX = "ris"
STATE_SCANNING = "scanning"
STATE_FLUSHING = "flushing"
STATE_DONE = "done"
DEAD_LETTERS_KEY = f"{KEY_PREFIX}:dead_letters"
DEAD_LETTERS_KEPT = 10_000
DEAD_LETTER_BODY_CHARS = 2_000
# Every task sent and not yet done, by task id: where it went and what it carries, so one the
# broker lost can be sent again. A batch leaves it when it is counted, a finalize when its job
# is done.
SENT_KEY = f"{KEY_PREFIX}:sent"

# Counts a batch once however often it is delivered, and says whether it completed the job.
# Returns 1 when the caller made the job complete and must flush the store, else 0.
_COMPLETE_CHECK = """
local h = redis.call('HMGET', KEYS[1], 'scan_done', 'batches', 'batches_done', 'state')
if h[1] == '1' and tonumber(h[3] or '0') >= tonumber(h[2] or '0') then
  if h[4] ~= 'done' then
    redis.call('HSET', KEYS[1], 'state', 'flushing')
    return 1
  end
end
return 0
"""

_RECORD_BATCH = (
    """
redis.call('HDEL', KEYS[3], ARGV[4])
if redis.call('SADD', KEYS[2], ARGV[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'indexed', ARGV[2])
  redis.call('HINCRBY', KEYS[1], 'failed', ARGV[3])
  redis.call('HINCRBY', KEYS[1], 'batches_done', 1)
end
"""
    + _COMPLETE_CHECK
)

_FINISH_SCAN = (
    """
redis.call('HSET', KEYS[1], 'scan_done', '1')
"""
    + _COMPLETE_CHECK
)


def new_job_id() -> str:
    return uuid.uuid4().hex[:12]


def batch_task_id(job: str, batch: int) -> str:
    """A batch's task id: the same each time the batch is sent, so the broker's copy is found."""
    return f"{job}.{batch}"


def finalize_task_id(job: str) -> str:
    return f"{job}.finalize"


@dataclass(frozen=True)
class SentTask:
    """A task in the ledger of those sent and not yet done."""

    task_id: str
    queue: str
    task: str
    argument: Any

    def to_json(self) -> str:
        return json.dumps({"queue": self.queue, "task": self.task, "argument": self.argument})

    @classmethod
    def from_json(cls, task_id: str, raw: str | bytes) -> SentTask:
        fields = json.loads(raw)
        return cls(task_id, fields["queue"], fields["task"], fields["argument"])


@dataclass(frozen=True)
class JobStatus:
    """A snapshot of one job's counters. indexed + failed + skipped = seen once it is done."""

    job: str
    state: str
    root: str
    collection: str
    seen: int
    enqueued: int
    skipped: int
    indexed: int
    failed: int
    batches: int
    batches_done: int
    created_at: float
    finished_at: float | None
    interrupted: bool = False
    model: str = ""

    @property
    def pending(self) -> int:
        return max(0, self.enqueued - self.indexed - self.failed)

    @property
    def done(self) -> bool:
        return self.state == STATE_DONE

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "pending": self.pending}


def _text(value: Any) -> str:
    """Redis replies are bytes; paths may hold undecodable bytes, kept as surrogates."""
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class FailedFiles:
    """A batch's update to the collection's record of failed files (see `known_failures`):
    files that failed, with the size and mtime they had, and files now indexed."""

    collection: str
    indexed_paths: list[str]
    failures: dict[str, str]
    failed_states: dict[str, tuple[int, int]]

    def write(self, pipe: Any, key: str) -> None:
        if self.failures:
            mapping = {
                path_bytes(path): "{}:{}:{}".format(*self.failed_states[path], reason)
                for path, reason in self.failures.items()
            }
            pipe.hset(key, mapping=cast(Any, mapping))
        if self.indexed_paths:
            pipe.hdel(key, *[path_bytes(path) for path in self.indexed_paths])


@redis_errors_translated
class JobTracker:
    """Reads and writes job records; safe to share between threads, cheap to create per process."""

    def __init__(self, client: redis.Redis):
        self.redis = client
        self._record_batch = client.register_script(_RECORD_BATCH)
        self._finish_scan = client.register_script(_FINISH_SCAN)

    @staticmethod
    def _key(job: str, suffix: str = "") -> str:
        return f"{KEY_PREFIX}:job:{job}{':' + suffix if suffix else ''}"

    def create(self, job: str, root: str, collection: str, model: str = "") -> None:
        now = time.time()
        pipe = self.redis.pipeline()
        pipe.hset(
            self._key(job),
            mapping={
                "state": STATE_SCANNING,
                "root": root,
                "collection": collection,
                "model": model,
                "created_at": now,
                "scan_done": 0,
                "batches": 0,
                "batches_done": 0,
                "enqueued": 0,
                "skipped": 0,
                "indexed": 0,
                "failed": 0,
            },
        )
        pipe.zadd(f"{KEY_PREFIX}:jobs", {job: now})
        pipe.execute()

    def add_batch(self, job: str, paths: int) -> int:
        """Count a batch about to be sent; returns its number within the job."""
        pipe = self.redis.pipeline()
        pipe.hincrby(self._key(job), "batches", 1)
        pipe.hincrby(self._key(job), "enqueued", paths)
        number, _ = pipe.execute()
        return int(number)

    def add_skipped(self, job: str, paths: int) -> None:
        if paths:
            self.redis.hincrby(self._key(job), "skipped", paths)

    def finish_scan(self, job: str, interrupted: bool = False) -> bool:
        """Mark the scan complete; True when every batch is already done (caller finalises).

        An interrupted scan ends the job with what was sent: it completes like any other.
        """
        if interrupted:
            self.redis.hset(self._key(job), "interrupted", 1)
        return bool(self._finish_scan(keys=[self._key(job)]))

    def record_batch(
        self,
        job: str,
        batch: int,
        indexed: int,
        failures: dict[str, str],
        failed_files: FailedFiles | None = None,
    ) -> bool:
        """Count a processed batch exactly once; True when it completed the job.

        With `failed_files`, the collection's record of failed files is updated in the same
        round trip: failures remembered with their file state, indexed files forgotten.
        """
        pipe = self.redis.pipeline(transaction=True)
        if failures:
            encoded = {path_bytes(path): reason for path, reason in failures.items()}
            pipe.hset(self._key(job, "failures"), mapping=cast(Any, encoded))
        if failed_files is not None:
            failed_files.write(pipe, self._failed_key(failed_files.collection))
        self._record_batch(
            keys=[self._key(job), self._key(job, "batches"), SENT_KEY],
            args=[batch, indexed, len(failures), batch_task_id(job, batch)],
            client=pipe,
        )
        return bool(pipe.execute()[-1])

    def mark_done(self, job: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self._key(job), mapping={"state": STATE_DONE, "finished_at": time.time()})
        pipe.hdel(SENT_KEY, finalize_task_id(job))
        pipe.execute()

    def remember_sent(self, task: SentTask) -> None:
        """Put a task in the ledger before it is sent: a send that fails leaves it there, and
        the sweep sends it once the broker is back."""
        self.redis.hset(SENT_KEY, task.task_id, task.to_json())

    def sent_tasks(self) -> dict[str, SentTask]:
        """The ledger: every task sent and not yet done, by task id."""
        raw = cast(dict[bytes, bytes], self.redis.hgetall(SENT_KEY))
        return {_text(key): SentTask.from_json(_text(key), value) for key, value in raw.items()}

    def is_sent(self, task_id: str) -> bool:
        return bool(self.redis.hexists(SENT_KEY, task_id))

    def forget_sent(self, task_id: str) -> None:
        self.redis.hdel(SENT_KEY, task_id)

    def is_done(self, task: SentTask) -> bool:
        """True when the task's work is already counted: its batch recorded, or its job done.
        A worker from before the ledger counts a batch without taking it out."""
        argument = task.argument
        if task.task == FINALIZE_TASK and isinstance(argument, str):
            return self.redis.hget(self._key(argument), "state") == STATE_DONE.encode()
        if task.task == INGEST_TASK and isinstance(argument, dict):
            job, batch = argument.get("job"), argument.get("batch")
            return bool(self.redis.sismember(self._key(str(job), "batches"), str(batch)))
        return False

    def status(self, job: str) -> JobStatus | None:
        raw = self.redis.hgetall(self._key(job))
        if not raw:
            return None
        fields = {_text(key): _text(value) for key, value in raw.items()}

        def number(name: str) -> int:
            return int(fields.get(name, 0))

        return JobStatus(
            job=job,
            state=fields.get("state", STATE_SCANNING),
            root=fields.get("root", ""),
            collection=fields.get("collection", ""),
            seen=number("enqueued") + number("skipped"),
            enqueued=number("enqueued"),
            skipped=number("skipped"),
            indexed=number("indexed"),
            failed=number("failed"),
            batches=number("batches"),
            batches_done=number("batches_done"),
            created_at=float(fields.get("created_at", 0.0)),
            finished_at=float(fields["finished_at"]) if "finished_at" in fields else None,
            interrupted=fields.get("interrupted") == "1",
            model=fields.get("model", ""),
        )

    def failures(self, job: str) -> dict[str, str]:
        raw = self.redis.hgetall(self._key(job, "failures"))
        return {_text(key): _text(value) for key, value in sorted(raw.items())}

    @staticmethod
    def _failed_key(collection: str) -> str:
        return f"{KEY_PREFIX}:failed:{collection}"

    def known_failures(self, collection: str, paths: list[str]) -> dict[str, tuple[int, int]]:
        """(size, mtime_ns) each of `paths` had when it last failed to be indexed."""
        if not paths:
            return {}
        values = self.redis.hmget(self._failed_key(collection), [path_bytes(p) for p in paths])
        known = {}
        for path, value in zip(paths, cast(list[Any], values), strict=True):
            if value is not None:
                size, mtime_ns, _ = _text(value).split(":", 2)
                known[path] = (int(size), int(mtime_ns))
        return known

    def record_dead_letter(self, reason: str, body: Any) -> None:
        """Keep a message no worker can process, with the reason, instead of retrying it."""
        entry = json.dumps(
            {"at": time.time(), "reason": reason, "body": repr(body)[:DEAD_LETTER_BODY_CHARS]}
        )
        pipe = self.redis.pipeline()
        pipe.lpush(DEAD_LETTERS_KEY, entry)
        pipe.ltrim(DEAD_LETTERS_KEY, 0, DEAD_LETTERS_KEPT - 1)
        pipe.execute()

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        entries = cast(list[Any], self.redis.lrange(DEAD_LETTERS_KEY, 0, limit - 1))
        return [json.loads(entry) for entry in entries]

    def recent_jobs(self, limit: int = 20) -> list[str]:
        jobs = self.redis.zrevrange(f"{KEY_PREFIX}:jobs", 0, limit - 1)
        return [_text(job) for job in cast(list[Any], jobs)]

    def require_status(self, job: str) -> JobStatus:
        """The job's status; JobNotFoundError when there is no such job."""
        status = self.status(job)
        if status is None:
            raise JobNotFoundError(f"no such job: {job}")
        return status

    def queue_length(self, queue: str) -> int:
        """Task messages waiting in a Celery queue (a Redis list of the same name)."""
        return int(cast(int, self.redis.llen(queue)))

    def delete_queue(self, queue: str) -> None:
        """Drop every task waiting in `queue`, and their ledger entries (or they would be sent
        again as lost)."""
        dropped = [key for key, task in self.sent_tasks().items() if task.queue == queue]
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(queue)
        if dropped:
            pipe.hdel(SENT_KEY, *dropped)
        pipe.execute()

    def ping(self) -> bool:
        return bool(self.redis.ping())
