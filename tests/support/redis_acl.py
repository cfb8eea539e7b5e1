"""A private ``redis-server`` loaded with the shipped ``deploy/redis/users.acl``, its
placeholder password hashes replaced by those of fresh random passwords, plus an admin user
(``default``) to read the ACL log. Used to prove that the worker, the agents and ``nbo api``
run with exactly the rights the file grants."""

from __future__ import annotations

import hashlib
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.worker import free_port

ACL_FILE = Path(__file__).resolve().parents[2] / "deploy" / "redis" / "users.acl"
WORKER_PLACEHOLDER = "#REPLACE_WITH_SHA256_OF_THE_WORKER_PASSWORD"
LOOKUP_PLACEHOLDER = "#REPLACE_WITH_SHA256_OF_THE_LOOKUP_PASSWORD"
ADMIN = "user default on nopass ~* &* +@all"


def redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server not on PATH (`nbo stack up` installs it)", pytrace=False)
    return binary


def start_redis(acl_file: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--aclfile", str(acl_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return proc
        except OSError:
            time.sleep(0.05)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        proc.wait(10)


class Server:
    def __init__(self, port: int, worker_pw: str, lookup_pw: str) -> None:
        self.port = port
        self.worker_pw = worker_pw
        self.lookup_pw = lookup_pw

    def url(self, user: str | None = None, password: str | None = None) -> str:
        auth = f"{user}:{password}@" if user else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def worker_url(self) -> str:
        return self.url("nbo-worker", self.worker_pw)

    def lookup_url(self) -> str:
        return self.url("nbo-lookup", self.lookup_pw)


@contextmanager
def acl_redis(work_dir: Path) -> Iterator[Server]:
    """The private server (see module doc), stopped on exit."""
    worker_pw, lookup_pw = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    text = ACL_FILE.read_text(encoding="utf-8")
    assert WORKER_PLACEHOLDER in text and LOOKUP_PLACEHOLDER in text
    text = text.replace(WORKER_PLACEHOLDER, "#" + hashlib.sha256(worker_pw.encode()).hexdigest())
    text = text.replace(LOOKUP_PLACEHOLDER, "#" + hashlib.sha256(lookup_pw.encode()).hexdigest())
    acl = work_dir / "users.acl"
    acl.write_text(f"{ADMIN}\n{text}", encoding="utf-8")
    port = free_port()
    proc = start_redis(acl, port)
    if proc.poll() is not None:
        out = proc.stdout.read().decode() if proc.stdout else ""
        pytest.fail(f"redis-server refused the ACL file:\n{out[-2000:]}", pytrace=False)
    try:
        yield Server(port, worker_pw, lookup_pw)
    finally:
        stop(proc)
