"""Runs a real ``nbo worker`` process for integration tests, with names unique to the test."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from app.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class WorkerEnv:
    """Unique topics, group and port for one test's worker(s)."""

    kafka_bootstrap: str
    redis_url: str
    token: str
    partitions: int = 3
    web_port: int = field(default_factory=free_port)
    extra: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        t = self.token
        return {
            "NBO_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "NBO_REDIS_URL": self.redis_url,
            "NBO_APP_ID": f"nbo-test-{t}",
            "NBO_TOPIC_USER_EVENTS": f"events-{t}",
            "NBO_TOPIC_ITEM_CATALOG": f"items-{t}",
            "NBO_TOPIC_OFFER_CATALOG": f"offers-{t}",
            "NBO_TOPIC_OFFERS": f"nbo-{t}",
            "NBO_TOPIC_DEAD_LETTERS": f"dlq-{t}",
            "NBO_USER_EVENTS_PARTITIONS": str(self.partitions),
            "NBO_WEB_PORT": str(self.web_port),
            "NBO_SESSION_TIMEOUT_S": "6",
            "NBO_HEARTBEAT_INTERVAL_S": "1",
            "NBO_COMMIT_INTERVAL_S": "0.5",
            "NBO_BATCH_WITHIN_S": "0.05",
            **self.extra,
        }

    def settings(self) -> Settings:
        saved = dict(os.environ)
        try:
            os.environ.update(self.env())
            return Settings()
        finally:
            os.environ.clear()
            os.environ.update(saved)


class WorkerProcess:
    """One ``python -m app.cli worker`` subprocess; its output goes to ``log_path``."""

    def __init__(self, worker_env: WorkerEnv, log_path: Path) -> None:
        self.worker_env = worker_env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        env = {**os.environ, **self.worker_env.env()}
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker", "--loglevel", "warn"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.worker_env.web_port}{path}"

    def get_json(self, path: str) -> tuple[int, dict[str, object]]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                status, body = self.get_json("/readyz")
                if status == 200 and body.get("ready"):
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"worker not ready within {timeout_s} s:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: no commit, no flush, no goodbye."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not exit in time."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
