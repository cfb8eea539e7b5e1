"""Pid files and process checks of the local stack."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from app.stack.process import (
    PidRecord,
    is_our_process,
    parse_pid_file,
    port_in_use,
    process_alive,
    read_pid_file,
    record_for,
    remove_file,
    tail,
    write_pid_file,
)

pytestmark = pytest.mark.unit

needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def test_pid_record_round_trips_through_its_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "kafka.pid"
    write_pid_file(path, PidRecord(4242, 987654))
    assert path.read_text() == "4242\n987654\n"
    assert read_pid_file(path) == PidRecord(4242, 987654)
    assert not path.with_name("kafka.pid.tmp").exists()


def test_pid_file_without_start_time_is_accepted() -> None:
    assert parse_pid_file("4242\n") == PidRecord(4242, None)
    assert PidRecord(4242).render() == "4242\n"


@pytest.mark.parametrize("text", ["", "\n", "abc\n", "-5\n", "0\n", "12x\n"])
def test_garbage_pid_file_reads_as_none(text: str) -> None:
    assert parse_pid_file(text) is None


def test_missing_pid_file_reads_as_none_and_removes_quietly(tmp_path: Path) -> None:
    path = tmp_path / "absent.pid"
    assert read_pid_file(path) is None
    remove_file(path)  # no error


@needs_proc
def test_our_own_process_is_recognised_by_start_time_and_cmdline() -> None:
    record = record_for(os.getpid())
    assert record.start_ticks is not None
    assert process_alive(record.pid)
    marker = Path(sys.executable).name
    assert is_our_process(record, [marker])


@needs_proc
def test_a_reused_pid_is_not_ours() -> None:
    record = record_for(os.getpid())
    assert record.start_ticks is not None
    reused = PidRecord(record.pid, record.start_ticks + 1)
    assert not is_our_process(reused, [])


@needs_proc
def test_a_process_without_our_markers_is_not_ours() -> None:
    assert not is_our_process(record_for(os.getpid()), ["kafka.Kafka"])


def test_a_dead_pid_is_not_ours() -> None:
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text()) if Path("/proc").is_dir() else 0
    unused = pid_max + 1 if pid_max else 2**22 + 1
    assert not process_alive(unused)
    assert not is_our_process(PidRecord(unused), [])


def test_port_in_use_sees_a_listener_and_a_free_port() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert port_in_use(port)
    assert not port_in_use(port)


def test_tail_returns_the_last_lines(tmp_path: Path) -> None:
    path = tmp_path / "server.log"
    path.write_text("".join(f"line {i}\n" for i in range(100)))
    assert tail(path, 3) == "line 97\nline 98\nline 99"
    assert tail(tmp_path / "missing.log") == ""
