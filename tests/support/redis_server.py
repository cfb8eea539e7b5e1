"""A private redis-server for tests that stop and restart Redis (the shared one must stay up)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path


class PrivateRedis:
    """``redis-server`` on a free loopback port with AOF in ``data_dir``; stop/start at will."""

    def __init__(
        self,
        data_dir: Path,
        port: int,
        tls: tuple[Path, Path, Path] | None = None,
        acl_file: Path | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        """``tls``: (CA, server certificate, server key) PEM files: TLS only on ``port``.
        ``acl_file``: a Redis ACL file (users) to load. ``extra_args``: more server options
        (``("--replicaof", "127.0.0.1", "<port>")`` makes a replica)."""
        self.extra_args = extra_args
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not on PATH (`nbo stack up` installs it)")
        self.binary = binary
        self.data_dir = data_dir
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None
        self.tls = tls
        self.acl_file = acl_file

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    def _argv(self) -> list[str]:
        argv = [self.binary, "--bind", "127.0.0.1", "--dir", str(self.data_dir),
                "--appendonly", "yes", "--appendfsync", "always", "--save", ""]  # fmt: skip
        if self.tls:
            ca, cert, key = self.tls
            argv += ["--port", "0", "--tls-port", str(self.port), "--tls-ca-cert-file", str(ca),
                     "--tls-cert-file", str(cert), "--tls-key-file", str(key),
                     "--tls-auth-clients", "optional"]  # fmt: skip
        else:
            argv += ["--port", str(self.port)]
        if self.acl_file:
            argv += ["--aclfile", str(self.acl_file)]
        return argv + list(self.extra_args)

    def start(self) -> PrivateRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            self._argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    if self.tls or self.acl_file:
                        return self  # it listens; PING would need TLS or credentials
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the server (SIGSTOP: it stops answering, as a stalled node does;
        SIGCONT: it goes on; SIGKILL: it dies without a word)."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        if sig == 9:
            self.proc.wait(10)
            self.proc = None
