"""`up` twice, `status`, `down`, `status` against a real local stack on non-default ports.

Uses a temporary stack directory and three ports free at the start of the test (so it never
meets the suite's own stack, whatever ports that one was given), but the repository's jar cache
(``.cache/stack``), so the jars are resolved at most once.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from app.settings import Settings
from app.stack import StackPrerequisiteMissing, stack_down, stack_status, stack_up
from app.stack.process import port_in_use, process_alive
from tests.support.services import services_required

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports that nothing listens on now (the kernel's choice)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def test_up_reuses_status_reports_and_down_stops_everything(tmp_path: Path) -> None:
    kafka_port, controller_port, redis_port = free_ports(3)
    settings = Settings(
        stack_dir=tmp_path / "stack",
        stack_cache_dir=REPO_ROOT / ".cache" / "stack",
        stack_kafka_port=kafka_port,
        stack_controller_port=controller_port,
        stack_redis_port=redis_port,
        stack_start_timeout_s=45.0,
    )
    try:
        first = stack_up(settings)
    except StackPrerequisiteMissing as exc:
        if services_required():
            raise
        pytest.skip(f"local stack prerequisites missing: {exc}")
    try:
        assert first.kafka_bootstrap == f"127.0.0.1:{kafka_port}"
        assert first.redis_url == f"redis://127.0.0.1:{redis_port}/0"
        assert first.env_file.read_text().splitlines() == first.env_lines()
        assert first.reused == ()

        second = stack_up(settings)
        assert (second.kafka_pid, second.redis_pid) == (first.kafka_pid, first.redis_pid)
        assert second.reused == ("kafka", "redis")

        status = stack_status(settings)
        assert status.all_running
        assert status.service("kafka").pid == first.kafka_pid
        assert status.service("redis").pid == first.redis_pid
        assert status.service("kafka").answering and status.service("redis").answering
        assert f"127.0.0.1:{kafka_port}" in status.render()
    finally:
        stopped = stack_down(settings)

    assert stopped == [f"kafka (pid {first.kafka_pid})", f"redis (pid {first.redis_pid})"]
    assert not process_alive(first.kafka_pid)
    assert not process_alive(first.redis_pid)
    assert not first.env_file.exists()
    assert not any(port_in_use(port) for port in (kafka_port, controller_port, redis_port))

    after = stack_status(settings)
    assert not after.all_running
    assert [s.running for s in after.services] == [False, False]
    assert stack_down(settings) == []
