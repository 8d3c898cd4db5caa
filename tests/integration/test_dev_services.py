"""Services the tests and `--embedded` runs start themselves: robust to ports taken meanwhile."""

from __future__ import annotations

import socket
from pathlib import Path

from ris.dev.services import LocalMilvusServer, free_port, free_ports


def test_the_milvus_server_picks_other_ports_when_one_was_taken_since(
    tmp_path: Path, cache_dir: Path
) -> None:
    """Ports are picked free when the server is made; another process may take one before it
    starts (as the local port of its own connection), which once failed a whole CI run."""
    server = LocalMilvusServer(tmp_path / "milvus", cache_dir / "milvus")
    taken = server.ports["query_coord_port"]
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", taken))
        holder.listen()
        environment = server._configure()
    assert server.ports["query_coord_port"] != taken
    assert server.ports["proxy_port"] == server.port
    config = (tmp_path / "milvus" / "configs" / "milvus.yaml").read_text()
    assert str(server.ports["query_coord_port"]) in config
    assert environment["METRICS_PORT"] == str(server.metrics_port)


def test_free_ports_are_all_different_and_avoid_the_ones_given() -> None:
    """A Milvus server takes a dozen ports: two of them alike abort it."""
    taken = free_port()
    ports = free_ports(64, besides={taken})
    assert len(set(ports)) == 64 and taken not in ports
