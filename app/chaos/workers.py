"""The workers of one chaos scenario: real ``nbo worker`` processes, started, killed, stopped
and watched. A worker that exits without being asked is an unasked restart: it is counted and
started again, so the scenario goes on and the count shows in the table."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from app.chaos.services import free_port
from app.commands.child_worker import ChildWorker

log = logging.getLogger(__name__)


class WorkerPool:
    """Workers sharing ``env`` (one consumer group); logs under ``log_dir``."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.workers: list[ChildWorker] = []
        self.unasked_restarts = 0
        self._started = 0

    async def start(self, n: int = 1) -> list[ChildWorker]:
        """Start ``n`` workers at once and wait until each is ready."""
        new = []
        for _ in range(n):
            port = free_port()
            self._started += 1
            env = {**self.env, "NBO_WEB_PORT": str(port)}
            new.append(ChildWorker(env, port, self.log_dir / f"worker-{self._started}.log"))
        self.workers.extend(new)
        await asyncio.gather(*(asyncio.to_thread(w.wait_ready, 120.0) for w in new))
        return new

    async def kill(self, worker: ChildWorker) -> None:
        """SIGKILL ``worker`` (asked for)."""
        self.workers.remove(worker)
        await asyncio.to_thread(worker.kill)

    async def stop(self, worker: ChildWorker) -> None:
        """SIGTERM ``worker`` and wait for its clean exit (asked for)."""
        self.workers.remove(worker)
        await asyncio.to_thread(worker.stop, 60.0)

    async def stop_all(self) -> None:
        for worker in list(self.workers):
            await self.stop(worker)

    async def watch(self, stop: asyncio.Event) -> None:
        """Until ``stop``: restart (and count) any worker that exited on its own."""
        while not stop.is_set():
            for worker in list(self.workers):
                if worker.proc.poll() is not None:
                    log.warning("a worker exited unasked (%s):\n%s", worker.proc.returncode,
                                worker.tail(15))  # fmt: skip
                    self.workers.remove(worker)
                    self.unasked_restarts += 1
                    await self.start(1)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)

    def rss_mb(self) -> float:
        """Resident memory of the first worker, MB."""
        status = Path(f"/proc/{self.workers[0].proc.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0
