"""`make demo`: index real sample photos end to end on embedded services, then search one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ris.datasets.samples import sample_photos
from ris.dev.services import LocalMilvusLite, LocalRedis, service_environment
from ris.settings import load_settings

REPO = Path(__file__).resolve().parent.parent
STATE = REPO / ".ris" / "demo"
BIN = Path(sys.executable).parent


def run(command: list[str], env: dict[str, str]) -> None:
    print(f"\n$ {' '.join(command)}", flush=True)
    subprocess.run([str(BIN / command[0]), *command[1:]], env=env, check=True)


def main() -> None:
    settings = load_settings()
    print("fetching sample photos (cached after the first run) ...", flush=True)
    photos = sample_photos(settings.cache_dir)
    dataset = photos[0].parent.parent
    print(f"{len(photos)} photos under {dataset}")
    with LocalRedis(STATE) as redis, LocalMilvusLite(STATE) as milvus:
        env = service_environment(redis, milvus)
        print(f"embedded Redis at {redis.url}, Milvus Lite server at {milvus.url}")
        worker_log = open(STATE / "worker.log", "ab")
        worker = subprocess.Popen(
            [str(BIN / "celery"), "-A", "workers", "worker", "--loglevel", "INFO", "-n", "demo@%h"],
            env=env,
            stdout=worker_log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        print(f"celery worker started (pid {worker.pid}, log {STATE / 'worker.log'})")
        try:
            run(["producer", "enqueue", str(dataset), "--wait"], env)
            query = dataset / "scikit-image" / "chelsea.png"
            run(["query", "search", str(query), "--top-k", "5"], env)
        finally:
            worker.terminate()
            worker.wait(60)
            worker_log.close()
    print("\nstopped the worker, Redis and Milvus Lite; data kept in", STATE)


if __name__ == "__main__":
    os.chdir(REPO)
    main()
