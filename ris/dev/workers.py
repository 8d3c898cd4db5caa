"""Local `celery -A workers worker` processes for demos, evaluation, tests and benches."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path


def launch_workers(
    env: dict[str, str],
    count: int,
    log_dir: Path,
    name: str = "worker",
    command_prefix: Sequence[str] = (),
    cwd: Path | None = None,
    ready_markers: Sequence[str] = ("ready.",),
    timeout: float = 60.0,
    app: str = "workers",
) -> list[subprocess.Popen[bytes]]:
    """Start `count` real `celery -A <app> worker` processes and wait until they are ready.

    Each runs in its own session (its whole process group can be killed) and logs at INFO to
    `log_dir/<name>-worker-<n>.log`; it is ready once its log holds every one of `ready_markers`.
    """
    processes, logs = [], []
    for number in range(count):
        log_path = log_dir / f"{name}-worker-{number}.log"
        with open(log_path, "wb") as log_file:
            processes.append(
                subprocess.Popen(
                    [
                        *command_prefix,
                        str(Path(sys.executable).parent / "celery"),
                        "-A",
                        app,
                        "worker",
                        "--loglevel",
                        "INFO",
                        "-n",
                        f"{name}{number}@%h",
                        "--without-gossip",
                        "--without-mingle",
                    ],
                    env=env,
                    cwd=cwd,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        logs.append(log_path)

    def ready(path: Path) -> bool:
        text = path.read_text(errors="replace")
        return all(marker in text for marker in ready_markers)

    deadline = time.monotonic() + timeout
    while not all(ready(path) for path in logs):
        if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
            stop_workers(processes)
            tails = "\n".join(path.read_text(errors="replace")[-800:] for path in logs)
            raise RuntimeError(f"celery workers did not become ready:\n{tails}")
        time.sleep(0.2)
    return processes


def stop_workers(processes: list[subprocess.Popen[bytes]], timeout: float = 30.0) -> None:
    """SIGTERM (warm shutdown), then SIGKILL whatever is still running after `timeout`."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
