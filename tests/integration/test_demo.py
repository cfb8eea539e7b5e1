"""``nbo demo`` as a newcomer runs it: every offer it prints carries a reason, and a healthy run
prints no client warnings (its topics are new, so the first produce meets fresh leaders)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from app.core.access import token_hash
from tests.support.worker import WorkerEnv

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
OFFER_LINE = re.compile(r"^  (\d+)\. (\S+)\s+(-?\d+\.\d{3})  (.*)$")


async def test_every_offer_the_demo_prints_has_a_reason_and_the_run_has_no_warnings(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str, unique: Callable[[str], str]
) -> None:
    token = unique("demo")
    worker_env = WorkerEnv(kafka_bootstrap, redis_url, token)
    env = {
        **os.environ,
        **worker_env.env(),
        # half the people in the control group: the path whose offers once had no reason
        "NBO_HOLDOUT_SHARE": "0.5",
        "NBO_STACK_DIR": str(tmp_path / "stack"),
        # the generated shop's user ids are the same every run: keys of this run only
        "NBO_REDIS_PREFIX": token,
    }
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "agents.cli", "demo", "--events", "3000", "--no-keep-running"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=280,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    offer_lines = [m for m in map(OFFER_LINE.match, out.splitlines()) if m]
    assert len(offer_lines) >= 5, out  # the summary did show people with their offers
    assert [m.group(2) for m in offer_lines if not m.group(4).strip()] == [], out
    assert "control group, not personalised" in out, out  # the path under test was shown
    dead = re.search(r"^dead-lettered\s+([\d,]+)$", out, re.MULTILINE)
    assert dead is not None and dead.group(1) == "0", out  # every generated event is valid
    noisy = [
        line
        for line in (proc.stdout + proc.stderr).splitlines()
        if re.search(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback", line)
    ]
    assert noisy == [], "\n".join(noisy)
    # the console ran beside the worker, and its URL and a token of the console scope are shown
    assert f"  http://127.0.0.1:{worker_env.console_port}/" in out, out
    shown = re.search(r"^  token: (\S+)$", out, re.MULTILINE)
    assert shown is not None, out
    tokens = (tmp_path / "stack" / "demo-api-tokens").read_text(encoding="utf-8")
    assert token_hash(shown.group(1)) in tokens and "console" in tokens
    console_log = (tmp_path / "stack" / "demo-console.log").read_text(encoding="utf-8")
    assert f"console on http://127.0.0.1:{worker_env.console_port}/" in console_log


def answers(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_a_sigterm_to_a_running_demo_stops_the_worker_lookups_and_console_it_started(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str, unique: Callable[[str], str]
) -> None:
    token = unique("demo-term")
    worker_env = WorkerEnv(kafka_bootstrap, redis_url, token)
    env = {**os.environ, **worker_env.env(), "NBO_STACK_DIR": str(tmp_path / "stack"),
           "NBO_REDIS_PREFIX": token}  # fmt: skip
    ports = (worker_env.web_port, worker_env.api_port, worker_env.console_port)
    proc = subprocess.Popen(
        [sys.executable, "-m", "agents.cli", "demo", "--events", "500", "--keep-running"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        seen: list[str] = []
        for line in proc.stdout:  # the positive barrier: the demo says it keeps running
            seen.append(line)
            if "keep running" in line:
                break
        assert all(answers(p) for p in ports), "".join(seen[-40:])
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
        assert proc.returncode == 128 + signal.SIGTERM
        assert [p for p in ports if answers(p)] == []
    finally:
        if proc.poll() is None:
            proc.kill()
