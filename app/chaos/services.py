"""The services the chaos run breaks: its own local stack (a Kafka broker and a Redis server in
``<stack dir>/chaos``, on free ports, so the developer's stack is never touched), and for the
failover scenario a Redis primary with one replica.

Every call here blocks (process signals, waiting for a port): the runner calls them in a
thread so its event flow goes on meanwhile.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

from app.settings import Settings
from app.stack import StackError, stack_down, stack_status, stack_up
from app.stack.process import stop_process, wait_gone
from app.stack.redis import find_redis_server, redis_answers

log = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port nobody listens on, below the kernel's ephemeral range (32768 and up on
    Linux): a service restarted on it cannot find it taken by some client's outgoing
    connection, which a port from the ephemeral range can be."""
    for _ in range(200):
        port = random.randint(20_000, 32_000)
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 32000")


class ChaosStack:
    """A private local stack whose broker and Redis can be killed, stopped and started again
    (with their data: a restart recovers the log and the append-only file)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings.model_copy(
            update={
                "stack_dir": settings.stack_dir / "chaos",
                "stack_cache_dir": settings.stack_cache_dir.resolve(),
                "stack_kafka_port": free_port(),
                "stack_controller_port": free_port(),
                "stack_redis_port": free_port(),
                "stack_kafka_sasl_port": None,
                "stack_kafka_ssl_port": None,
                "kafka_bootstrap": None,
                "redis_url": None,
            }
        )

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.settings.stack_kafka_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.settings.stack_redis_port}/0"

    def up(self, timeout_s: float = 120.0) -> None:
        """Start whatever of the two is not running; wait until both answer.

        Right after a kill the port can still count as taken: the dead broker's accepted
        connections linger (FIN-WAIT) until their clients close them, and the stack refuses
        a port it finds in use. So a start refused for that reason is tried again."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                stack_up(self.settings)
                return
            except StackError as exc:
                if "already in use" not in str(exc) or time.monotonic() > deadline:
                    raise
                log.info("the port is not free yet (%s); trying again", exc)
                time.sleep(1.0)

    def down(self) -> None:
        stack_down(self.settings)
        shutil.rmtree(self.settings.stack_dir, ignore_errors=True)

    def pid(self, service: str) -> int:
        pid = stack_status(self.settings).service(service).pid
        if pid is None:
            raise RuntimeError(f"the chaos stack's {service} is not running")
        return pid

    def kill(self, service: str) -> None:
        """SIGKILL ``service`` ("kafka" or "redis"): no shutdown, no flush."""
        pid = self.pid(service)
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid, 30)

    def stop(self, service: str) -> None:
        """SIGTERM ``service`` and wait until it is gone (a clean shutdown)."""
        stop_process(self.pid(service))


class RedisPair:
    """A Redis primary and one replica of it (append-only files, on free ports)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.primary_port, self.replica_port = free_port(), free_port()
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    def url(self, port: int) -> str:
        return f"redis://127.0.0.1:{port}/0"

    def start(self) -> None:
        server = find_redis_server()
        for port, extra in ((self.primary_port, []),
                            (self.replica_port, ["--replicaof", "127.0.0.1",
                                                 str(self.primary_port)])):  # fmt: skip
            data = self.home / str(port)
            data.mkdir(parents=True, exist_ok=True)
            argv = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "yes", "--dir", str(data), *extra]  # fmt: skip
            with (data / "console.log").open("ab") as log:
                self._procs[port] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(redis_answers(p) for p in self._procs) and self._linked():
                return
            time.sleep(0.1)
        raise RuntimeError("the Redis primary and replica did not come up linked")

    def _linked(self) -> bool:
        with redis.Redis(port=self.replica_port, socket_timeout=2) as client:
            info = client.info("replication")
        return bool(info.get("master_link_status") == "up")

    def signal(self, port: int, sig: signal.Signals) -> None:
        self._procs[port].send_signal(sig)
        if sig == signal.SIGKILL:
            self._procs[port].wait(10)

    def promote_replica(self) -> None:
        """The replica stops replicating and takes writes (what a failover does)."""
        with redis.Redis(port=self.replica_port, socket_timeout=10) as client:
            client.replicaof("NO", "ONE")

    def stop(self) -> None:
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait(10)
        shutil.rmtree(self.home, ignore_errors=True)
