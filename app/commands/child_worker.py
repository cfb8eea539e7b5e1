"""A ``nbo worker`` (or ``nbo api``) child process: start, wait until ready, read its HTTP
endpoints, stop.

Used by ``nbo demo``, ``nbo bench`` and the integration tests, so all of them run the worker
exactly as production does (``python -m agents.cli worker``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

_METRIC = re.compile(r"^(nbo_[a-z_]+?)(?:_total)?(\{[^}]*\})? ([0-9.e+-]+)$", re.MULTILINE)
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class ChildWorker:
    """One worker process with environment ``env``, HTTP on ``port``, output to ``log_path``."""

    def __init__(
        self,
        env: dict[str, str],
        port: int,
        log_path: Path,
        api_token: str | None = None,
        command: tuple[str, ...] = ("worker", "--loglevel", "warn"),
        ready_path: str = "/readyz",
    ) -> None:
        """``api_token``: sent as the bearer token of :meth:`get` (the ``/users`` lookups
        need one; health and metrics do not). ``command``: the ``nbo`` command to run (the
        worker; ``("api",)`` serves the lookups, on ``NBO_API_PORT``; ``("console",)`` the
        console, whose readiness is ``ready_path="/healthz"``)."""
        self.port = port
        self.ready_path = ready_path
        self.log_path = log_path
        self.api_token = api_token
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agents.cli", *command],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def get(self, path: str) -> tuple[int, bytes]:
        """HTTP GET on the worker: (status, body)."""
        url = f"http://127.0.0.1:{self.port}{path}"
        headers = {"Authorization": f"Bearer {self.api_token}"} if self.api_token else {}
        try:
            with urllib.request.urlopen(
                urllib.request.Request(url, headers=headers), timeout=5
            ) as resp:
                return int(resp.status), bytes(resp.read())
        except urllib.error.HTTPError as err:
            return int(err.code), bytes(err.read())

    def get_json(self, path: str) -> tuple[int, Any]:
        status, body = self.get(path)
        return status, json.loads(body or b"{}")

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        """Wait until the ready path (``/readyz``) answers 200; raises with the log's tail
        otherwise."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the worker exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                if self.get(self.ready_path)[0] == 200:
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the worker was not ready within {timeout_s:.0f} s:\n{self.tail()}")

    def metrics(self) -> dict[str, float]:
        """The worker's ``nbo_*`` samples (counters without ``_total``; labelled ones keyed
        ``name{label="value"}``)."""
        _, body = self.get("/metrics")
        return {name + labels: float(v) for name, labels, v in _METRIC.findall(body.decode())}

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the worker has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS

    def peak_rss_bytes(self) -> int:
        """The worker's peak resident memory (VmHWM), bytes."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0

    def tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the worker's output."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: no commit, no flush."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, wait up to ``timeout_s``, then SIGKILL; returns the exit code."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode
