"""A three-node Redis Cluster on loopback for tests (redis-server and redis-cli from PATH)."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.worker import free_port


@contextmanager
def redis_cluster(folder: Path, nodes: int = 3) -> Iterator[str]:
    """Start ``nodes`` primaries, join them into one cluster; yields a node's URL."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        raise RuntimeError("redis-server and redis-cli must be on PATH (`nbo stack up` installs)")
    ports = [_cluster_port() for _ in range(nodes)]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            node_dir = folder / str(port)
            node_dir.mkdir(parents=True)
            procs.append(
                subprocess.Popen(
                    [
                        server,
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--dir",
                        str(node_dir),
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in ports:
            _wait(lambda p=port: _cli(cli, p, "PING") == "PONG")
        subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        for port in ports:
            _wait(lambda p=port: "cluster_state:ok" in _cli(cli, p, "CLUSTER", "INFO"))
        yield f"redis://127.0.0.1:{ports[0]}/0"
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)


def _cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free and valid too."""
    for _ in range(100):
        port = random.randint(20_000, 30_000)
        if all(_free(p) for p in (port, port + 10_000)):
            return port
    return free_port()


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _cli(cli: str, port: int, *args: str) -> str:
    result = subprocess.run(
        [cli, "-p", str(port), *args], capture_output=True, text=True, timeout=10, check=False
    )
    return result.stdout.strip()


def _wait(check: object, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.1)
    raise RuntimeError("the Redis Cluster did not come up in time")
