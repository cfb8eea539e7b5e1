"""Runs a real ``nbo worker`` process for integration tests, with names unique to the test."""

from __future__ import annotations

import os
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from app.commands.child_worker import ChildWorker
from app.core.access import ApiClient, Scope, new_token, token_hash
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
    api_port: int = field(default_factory=free_port)
    api_metrics_port: int = field(default_factory=free_port)
    console_port: int = field(default_factory=free_port)
    api_token: str = field(default_factory=new_token)
    """The bearer token of a client with every scope (``tokens_file``)."""

    @property
    def tokens_file(self) -> Path:
        """The worker's API tokens file: one client, ``tests``, with every scope."""
        path = Path(tempfile.gettempdir()) / f"nbo-test-tokens-{self.token}"
        if not path.exists():
            path.write_text(
                ApiClient("tests", token_hash(self.api_token), frozenset(Scope)).line() + "\n",
                encoding="utf-8",
            )
        return path

    def env(self) -> dict[str, str]:
        t = self.token
        return {
            "NBO_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "NBO_REDIS_URL": self.redis_url,
            "NBO_APP_ID": f"nbo-test-{t}",
            "NBO_TOPIC_USER_EVENTS": f"events-{t}",
            "NBO_TOPIC_ITEM_CATALOG": f"items-{t}",
            "NBO_TOPIC_OFFER_CATALOG": f"offers-{t}",
            "NBO_TOPIC_ITEM_NEIGHBOURS": f"neighbours-{t}",
            "NBO_TOPIC_OFFERS": f"nbo-{t}",
            "NBO_TOPIC_DEAD_LETTERS": f"dlq-{t}",
            "NBO_TOPIC_USER_CONSENT": f"consent-{t}",
            "NBO_TOPIC_PRIVACY_REQUESTS": f"privacy-{t}",
            "NBO_TOPIC_PRIVACY_AUDIT": f"audit-{t}",
            "NBO_TOPIC_DECISIONS": f"decisions-{t}",
            "NBO_USER_EVENTS_PARTITIONS": str(self.partitions),
            "NBO_WEB_PORT": str(self.web_port),
            "NBO_SESSION_TIMEOUT_S": "6",
            "NBO_HEARTBEAT_INTERVAL_S": "1",
            "NBO_COMMIT_INTERVAL_S": "0.5",
            "NBO_HOLDOUT_SHARE": "0",  # tests that need the control group set it
            "NBO_API_TOKENS_FILE": str(self.tokens_file),
            "NBO_API_PORT": str(self.api_port),
            "NBO_API_METRICS_PORT": str(self.api_metrics_port),
            "NBO_CONSOLE_PORT": str(self.console_port),
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


class WorkerProcess(ChildWorker):
    """A worker child process with a test's unique environment."""

    command: tuple[str, ...] = ("worker", "--loglevel", "warn")

    def __init__(self, worker_env: WorkerEnv, log_path: Path) -> None:
        self.worker_env = worker_env
        self._log_path = log_path

    def port(self) -> int:
        """The port :meth:`get` talks to."""
        return self.worker_env.web_port

    def start(self) -> WorkerProcess:
        env = {**os.environ, **self.worker_env.env()}
        ChildWorker.__init__(
            self,
            env,
            self.port(),
            self._log_path,
            api_token=self.worker_env.api_token,
            command=self.command,
        )
        return self


class ApiProcess(WorkerProcess):
    """An ``nbo api`` child process (the person lookups) with a test's environment; its
    :meth:`get` sends the test client's token."""

    command = ("api", "--loglevel", "warning")

    def port(self) -> int:
        return self.worker_env.api_port
