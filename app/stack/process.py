"""Pid files and process helpers of the local stack (Linux ``/proc`` based, POSIX fallback).

A pid file holds the pid on its first line and, on its second, the process start time in clock
ticks since boot (field 22 of ``/proc/<pid>/stat``). The start time tells our process apart from
an unrelated one that got the same pid after ours died.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

PROC = Path("/proc")
STOP_TIMEOUT_S = 20.0
"""How long :func:`stop_process` waits after SIGTERM before SIGKILL, seconds."""
KILL_TIMEOUT_S = 5.0
"""How long :func:`stop_process` waits after SIGKILL, seconds."""
POLL_INTERVAL_S = 0.1

_children: dict[int, subprocess.Popen[bytes]] = {}
"""Processes this interpreter spawned, by pid, so stopping them also collects their status."""


@dataclass(frozen=True)
class PidRecord:
    """What a pid file holds: the pid and, when known, its start time in clock ticks."""

    pid: int
    start_ticks: int | None = None

    def render(self) -> str:
        """The pid file's text: pid, then start ticks when known, one per line."""
        lines = [str(self.pid)]
        if self.start_ticks is not None:
            lines.append(str(self.start_ticks))
        return "\n".join(lines) + "\n"


def parse_pid_file(text: str) -> PidRecord | None:
    """Parse a pid file's text; ``None`` when it holds no positive pid."""
    lines = text.split()
    if not lines or not lines[0].isdigit() or int(lines[0]) <= 0:
        return None
    start = int(lines[1]) if len(lines) > 1 and lines[1].isdigit() else None
    return PidRecord(int(lines[0]), start)


def read_pid_file(path: Path) -> PidRecord | None:
    """The record in the pid file at ``path``; ``None`` when missing, unreadable or garbage."""
    try:
        return parse_pid_file(path.read_text(encoding="ascii", errors="replace"))
    except OSError:
        return None


def write_pid_file(path: Path, record: PidRecord) -> None:
    """Write ``record`` to ``path`` atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(record.render(), encoding="ascii")
    tmp.replace(path)


def remove_file(path: Path) -> None:
    """Remove ``path`` if it exists."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _proc_stat_fields(pid: int) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` after the command name (index 0 is the state)."""
    try:
        raw = (PROC / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # The command name is in parentheses and may itself hold spaces or parentheses.
    return raw[raw.rfind(")") + 2 :].split()


def process_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot; ``None`` when unknown or gone."""
    fields = _proc_stat_fields(pid)
    if fields is None or len(fields) < 20 or not fields[19].isdigit():
        return None
    return int(fields[19])


def process_alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    if PROC.is_dir():
        fields = _proc_stat_fields(pid)
        return fields is not None and bool(fields) and fields[0] not in ("Z", "X", "x")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_cmdline(pid: int) -> str:
    """The command line of ``pid`` with arguments joined by spaces; ``""`` when unknown."""
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode("utf-8", errors="replace").strip()


def is_our_process(record: PidRecord, markers: Sequence[str]) -> bool:
    """Whether the pid file's process is alive, has the same start time and shows ``markers``.

    ``markers`` are substrings that must all appear in ``/proc/<pid>/cmdline``. Without
    ``/proc`` (not Linux) only liveness is checked.
    """
    if not process_alive(record.pid):
        return False
    if not PROC.is_dir():
        return True
    if record.start_ticks is not None and process_start_ticks(record.pid) != record.start_ticks:
        return False
    cmdline = process_cmdline(record.pid)
    return all(marker in cmdline for marker in markers)


def spawn_detached(argv: Sequence[str], log_path: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session, stdout and stderr to ``log_path`` (truncated first).

    The process outlives the caller; it is not killed when the caller exits.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    _children[proc.pid] = proc
    return proc


def record_for(pid: int) -> PidRecord:
    """A pid record for a running ``pid``, with its start time when ``/proc`` knows it."""
    return PidRecord(pid, process_start_ticks(pid))


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is our child, so it does not linger as a zombie."""
    proc = _children.get(pid)
    if proc is not None:
        if proc.poll() is not None:
            del _children[pid]
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def wait_gone(pid: int, timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` seconds for ``pid`` to exit; whether it did."""
    deadline = time.monotonic() + timeout_s
    while True:
        _reap(pid)
        if not process_alive(pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL_S)


def stop_process(pid: int, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """SIGTERM ``pid``, wait up to ``timeout_s`` seconds, then SIGKILL; whether it is gone.

    Only ever call this with a pid checked by :func:`is_our_process`.
    """
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        _reap(pid)
        return True
    if wait_gone(pid, timeout_s):
        return True
    log.warning("pid %d did not exit %.0f s after SIGTERM; sending SIGKILL", pid, timeout_s)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return wait_gone(pid, KILL_TIMEOUT_S)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something listens on ``host:port`` (a bind with SO_REUSEADDR fails)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def tail(path: Path, lines: int = 30, max_bytes: int = 64_000) -> str:
    """The last ``lines`` lines of ``path`` (reads at most ``max_bytes``); ``""`` if missing."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the ``with`` block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
