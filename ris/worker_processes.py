"""Real `celery -A workers worker` processes, started and stopped from Python."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

BIN = Path(sys.executable).parent


def launch_workers(
    env: dict[str, str],
    count: int,
    log_dir: Path,
    name: str = "worker",
    prefix: Sequence[str] = (),
    ready_timeout: float = 60.0,
) -> list[subprocess.Popen[bytes]]:
    """Start `count` worker processes (each logging to `log_dir`) and wait until all are ready.

    Each runs in its own session, so a caller can kill its whole process group; `prefix` wraps
    the command (for example to drop privileges).
    """
    processes, logs = [], []
    for number in range(count):
        log_path = log_dir / f"{name}-worker-{number}.log"
        with open(log_path, "wb") as log_file:
            command = [
                *prefix,
                str(BIN / "celery"),
                "-A",
                "workers",
                "worker",
                "--loglevel",
                "INFO",
                "-n",
                f"{name}{number}@%h",
                "--without-gossip",
                "--without-mingle",
            ]
            processes.append(
                subprocess.Popen(
                    command,
                    env=env,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        logs.append(log_path)
    deadline = time.monotonic() + ready_timeout
    while not all("ready." in path.read_text(errors="replace") for path in logs):
        if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
            stop_workers(processes)
            tails = "\n".join(path.read_text(errors="replace")[-800:] for path in logs)
            raise RuntimeError(f"celery workers did not become ready:\n{tails}")
        time.sleep(0.2)
    return processes


def stop_workers(processes: list[subprocess.Popen[bytes]], timeout: float = 30.0) -> None:
    """SIGTERM (warm shutdown), then SIGKILL whatever is still running after `timeout` s."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
