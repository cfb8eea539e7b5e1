"""``nbo stack up | down | status``: the local Kafka broker and Redis server as one stack.

Everything lives under ``settings.stack_dir`` (default ``.stack``): one sub-directory per service
with its config, data, logs and pid file, plus the env file ``<stack_dir>/env``. ``up`` and
``down`` hold an exclusive lock on ``<stack_dir>/.lock`` so two of them never race.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.settings import Settings
from app.stack import kafka, redis
from app.stack.errors import StackError
from app.stack.process import (
    PidRecord,
    file_lock,
    is_our_process,
    port_in_use,
    read_pid_file,
    record_for,
    remove_file,
    spawn_detached,
    stop_process,
    write_pid_file,
)

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
ENV_FILE_NAME = "env"
LOCK_FILE_NAME = ".lock"
READY_POLL_INTERVAL_S = 0.25
"""Pause between two readiness probes while waiting, seconds."""
PROBE_TIMEOUT_S = 2.0
"""Socket timeout of one readiness probe, seconds."""


# --- public results ---------------------------------------------------------------------------


def render_env_lines(kafka_bootstrap: str, redis_url: str) -> list[str]:
    """The env file's lines: ``export NBO_KAFKA_BOOTSTRAP=...`` and ``export NBO_REDIS_URL=...``."""
    return [f"export NBO_KAFKA_BOOTSTRAP={kafka_bootstrap}", f"export NBO_REDIS_URL={redis_url}"]


def kafka_bootstrap_for(settings: Settings) -> str:
    """``127.0.0.1:<stack_kafka_port>``."""
    return f"{HOST}:{settings.stack_kafka_port}"


def redis_url_for(settings: Settings) -> str:
    """``redis://127.0.0.1:<stack_redis_port>/0``."""
    return f"redis://{HOST}:{settings.stack_redis_port}/0"


def env_file_for(settings: Settings) -> Path:
    """``<stack_dir>/env`` (absolute)."""
    return settings.stack_dir.resolve() / ENV_FILE_NAME


@dataclass(frozen=True)
class StackInfo:
    """Where the running stack answers; returned by :func:`stack_up`."""

    kafka_bootstrap: str
    """``127.0.0.1:<port>``."""
    redis_url: str
    """``redis://127.0.0.1:<port>/0``."""
    env_file: Path
    """The shell-sourceable env file holding :meth:`env_lines`."""
    kafka_pid: int
    redis_pid: int
    reused: tuple[str, ...] = ()
    """Names of the services that already ran and were reused (empty: both started now)."""

    def env_lines(self) -> list[str]:
        """The env file's lines (``export NBO_...=...``), for the CLI to print."""
        return render_env_lines(self.kafka_bootstrap, self.redis_url)


@dataclass(frozen=True)
class ServiceStatus:
    """One service of the stack as :func:`stack_status` found it."""

    name: str
    address: str
    """``host:port`` its clients use."""
    pid: int | None
    """The pid of *our* process (from the pid file, verified); ``None`` when not running."""
    answering: bool
    """Whether it answered a metadata request (Kafka) or PING (Redis) just now."""
    note: str = ""
    """Anything odd: a stale pid file, the port used by someone else, other settings."""

    @property
    def running(self) -> bool:
        return self.pid is not None

    def render(self) -> str:
        """One line: name, state, pid, address, whether it answers, note."""
        if self.running:
            state = f"running  pid {self.pid:<8}"
            answer = "answering" if self.answering else "NOT answering"
        else:
            state = f"stopped  {'':12}"
            answer = ""
        line = f"{self.name:<6} {state} {self.address:<22} {answer}".rstrip()
        return f"{line}  ({self.note})" if self.note else line


@dataclass(frozen=True)
class StackStatus:
    """What runs where; returned by :func:`stack_status`."""

    services: tuple[ServiceStatus, ...]
    env_file: Path
    env_file_present: bool

    @property
    def all_running(self) -> bool:
        """Whether every service runs and answers."""
        return all(s.running and s.answering for s in self.services)

    def service(self, name: str) -> ServiceStatus:
        """The status of the service called ``name`` (``"kafka"`` or ``"redis"``)."""
        for status in self.services:
            if status.name == name:
                return status
        raise KeyError(name)

    def render(self) -> str:
        """Human-readable text, one line per service, then the env file."""
        lines = [s.render() for s in self.services]
        if self.env_file_present:
            lines.append(f"env file: {self.env_file} (load with: source {self.env_file})")
        else:
            lines.append(f"env file: {self.env_file} (absent: run `nbo stack up`)")
        return "\n".join(lines)


# --- the two services -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Service:
    """What the manager needs to know to start, check and stop one service."""

    name: str
    address: str
    pid_file: Path
    markers: tuple[str, ...]
    ports: tuple[tuple[int, str], ...]
    """``(port, setting)`` pairs it listens on, e.g. ``(19092, "NBO_STACK_KAFKA_PORT")``."""
    main_port: int
    answers: Callable[[float], bool]
    config_matches: Callable[[], bool]
    log_excerpt: Callable[[], str]

    def running_record(self) -> PidRecord | None:
        """The pid record when our process runs; ``None`` otherwise."""
        record = read_pid_file(self.pid_file)
        if record is not None and is_our_process(record, self.markers):
            return record
        return None


def scram_for(settings: Settings) -> kafka.ScramListener | None:
    """The optional SASL_PLAINTEXT/SCRAM listener of the local broker (off by default)."""
    if settings.stack_kafka_sasl_port is None:
        return None
    return kafka.ScramListener(
        settings.stack_kafka_sasl_port,
        settings.stack_kafka_sasl_username,
        settings.stack_kafka_sasl_password.get_secret_value(),
    )


def tls_for(settings: Settings) -> kafka.TlsListener | None:
    """The optional mutual-TLS listener of the local broker (off by default)."""
    port = settings.stack_kafka_ssl_port
    keystore, truststore = settings.stack_kafka_ssl_keystore, settings.stack_kafka_ssl_truststore
    if port is None:
        return None
    if keystore is None or truststore is None:
        raise StackError(
            "NBO_STACK_KAFKA_SSL_PORT needs NBO_STACK_KAFKA_SSL_KEYSTORE and "
            "NBO_STACK_KAFKA_SSL_TRUSTSTORE (PEM files)"
        )
    return kafka.TlsListener(port, keystore.resolve(), truststore.resolve())


def _kafka_service(settings: Settings, paths: kafka.KafkaPaths) -> _Service:
    port, controller = settings.stack_kafka_port, settings.stack_controller_port
    sasl_ports: tuple[tuple[int, str], ...] = ()
    if settings.stack_kafka_sasl_port is not None:
        sasl_ports += ((settings.stack_kafka_sasl_port, "NBO_STACK_KAFKA_SASL_PORT"),)
    if settings.stack_kafka_ssl_port is not None:
        sasl_ports += ((settings.stack_kafka_ssl_port, "NBO_STACK_KAFKA_SSL_PORT"),)
    return _Service(
        name="kafka",
        address=kafka_bootstrap_for(settings),
        pid_file=paths.pid_file,
        markers=paths.cmdline_markers,
        ports=(
            (port, "NBO_STACK_KAFKA_PORT"),
            (controller, "NBO_STACK_CONTROLLER_PORT"),
            *sasl_ports,
        ),
        main_port=port,
        answers=lambda timeout_s: kafka.kafka_answers(port, timeout_s),
        config_matches=lambda: kafka.config_matches(
            paths, port, controller, scram_for(settings), tls_for(settings)
        ),
        log_excerpt=lambda: kafka.log_excerpt(paths),
    )


def _redis_service(settings: Settings, paths: redis.RedisPaths) -> _Service:
    port = settings.stack_redis_port
    return _Service(
        name="redis",
        address=f"{HOST}:{port}",
        pid_file=paths.pid_file,
        # No port marker: `down` must find our server even after NBO_STACK_REDIS_PORT changed.
        markers=redis.cmdline_markers(port)[:1],
        ports=((port, "NBO_STACK_REDIS_PORT"),),
        main_port=port,
        answers=lambda timeout_s: redis.redis_answers(port, timeout_s),
        config_matches=lambda: redis.config_matches(port, paths),
        log_excerpt=lambda: redis.log_excerpt(paths),
    )


def _paths(settings: Settings) -> tuple[kafka.KafkaPaths, redis.RedisPaths]:
    kafka_paths = kafka.KafkaPaths.create(
        settings.stack_dir, settings.stack_cache_dir, kafka.kafka_version()
    )
    return kafka_paths, redis.RedisPaths.create(settings.stack_dir)


def _services(settings: Settings) -> tuple[_Service, _Service]:
    kafka_paths, redis_paths = _paths(settings)
    return _kafka_service(settings, kafka_paths), _redis_service(settings, redis_paths)


def _check_ports_distinct(settings: Settings) -> None:
    ports = {
        "NBO_STACK_KAFKA_PORT": settings.stack_kafka_port,
        "NBO_STACK_CONTROLLER_PORT": settings.stack_controller_port,
        "NBO_STACK_REDIS_PORT": settings.stack_redis_port,
    }
    for name, port in ports.items():
        if not 1 <= port <= 65535:
            raise StackError(f"{name}={port} is not a TCP port (1-65535).")
    if len(set(ports.values())) != len(ports):
        shown = ", ".join(f"{name}={port}" for name, port in ports.items())
        raise StackError(f"the local stack needs three different ports, got {shown}.")


def _check_ports_free(service: _Service) -> None:
    for port, setting in service.ports:
        if port_in_use(port, HOST):
            raise StackError(
                f"port {port} on {HOST} (for the local {service.name}) is already in use by "
                f"another process, not one the stack started. Stop that process or choose "
                f"another port, e.g. {setting}={port + 10000 if port < 55535 else port - 10000}."
            )


# --- up ---------------------------------------------------------------------------------------


def _write_env_file(path: Path, lines: list[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)


def _wait_ready(
    service: _Service,
    pid: int,
    proc: subprocess.Popen[bytes] | None,
    deadline: float,
    timeout_s: float,
) -> None:
    """Wait until ``service`` answers; raise :class:`StackError` when it dies or times out."""
    record = read_pid_file(service.pid_file) or PidRecord(pid)
    while True:
        if service.answers(PROBE_TIMEOUT_S):
            return
        # A child we just spawned is ours while it runs: right after fork its cmdline is
        # still ours (python), not the server's, until exec, so markers would misjudge it.
        exit_code = proc.poll() if proc is not None else None
        gone = (
            exit_code is not None
            if proc is not None
            else not is_our_process(record, service.markers)
        )
        if gone:
            remove_file(service.pid_file)
            how = f" with code {exit_code}" if exit_code is not None else ""
            raise StackError(
                f"the local {service.name} (pid {pid}) exited{how} before it answered on "
                f"{service.address}. {service.log_excerpt()}"
            )
        if time.monotonic() >= deadline:
            stopping = "; stopping it" if proc is not None else ""
            raise StackError(
                f"the local {service.name} (pid {pid}) did not answer on {service.address} "
                f"within {timeout_s:.0f} s (NBO_STACK_START_TIMEOUT_S){stopping}. "
                f"{service.log_excerpt()}"
            )
        time.sleep(READY_POLL_INTERVAL_S)


def _start(
    service: _Service, argv: list[str], log_path: Path, cwd: Path
) -> subprocess.Popen[bytes]:
    log.info("starting %s on %s...", service.name, service.address)
    proc = spawn_detached(argv, log_path, cwd)
    write_pid_file(service.pid_file, record_for(proc.pid))
    return proc


def stack_up(settings: Settings) -> StackInfo:
    """Start (or reuse) the local Kafka broker and Redis server; wait until both answer.

    Idempotent: a service whose pid file names our live process is reused. Both start in
    parallel; waits at most ``settings.stack_start_timeout_s`` seconds (default 90) until Kafka
    answers a metadata request and Redis answers PING. Then writes ``<stack_dir>/env``. On
    failure, stops what this call started and raises :class:`StackError` with the tail of the
    failing service's log.
    """
    _check_ports_distinct(settings)
    stack_dir = settings.stack_dir.resolve()
    stack_dir.mkdir(parents=True, exist_ok=True)
    kafka_paths, redis_paths = _paths(settings)
    kafka_svc = _kafka_service(settings, kafka_paths)
    redis_svc = _redis_service(settings, redis_paths)
    timeout_s = settings.stack_start_timeout_s

    with file_lock(stack_dir / LOCK_FILE_NAME):
        running: dict[str, PidRecord] = {}
        for service in (kafka_svc, redis_svc):
            record = service.running_record()
            if record is None:
                remove_file(service.pid_file)
                _check_ports_free(service)
            elif not service.config_matches():
                raise StackError(
                    f"the local {service.name} (pid {record.pid}) runs with other ports than "
                    f"the current NBO_STACK_* settings ask for; run `nbo stack down` first."
                )
            else:
                log.info("%s already runs (pid %d); reusing it", service.name, record.pid)
                running[service.name] = record

        # Prerequisites of both services first, so a missing one starts nothing.
        java = redis_server = ""
        heap = kafka.validate_heap(settings.stack_kafka_heap)
        if kafka_svc.name not in running:
            java = kafka.find_java()
            kafka.ensure_jars(kafka_paths)
        if redis_svc.name not in running:
            redis_server = redis.find_redis_server()

        started: dict[str, subprocess.Popen[bytes]] = {}
        try:
            if java:
                scram = scram_for(settings)
                kafka.write_config(
                    kafka_paths,
                    settings.stack_kafka_port,
                    settings.stack_controller_port,
                    scram,
                    tls_for(settings),
                )
                kafka.ensure_formatted(java, kafka_paths, scram)
                started[kafka_svc.name] = _start(
                    kafka_svc,
                    kafka.broker_argv(java, kafka_paths, heap),
                    kafka_paths.console_log,
                    kafka_paths.home,
                )
            if redis_server:
                redis.write_config(settings.stack_redis_port, redis_paths)
                started[redis_svc.name] = _start(
                    redis_svc,
                    redis.server_argv(redis_server, redis_paths),
                    redis_paths.console_log,
                    redis_paths.home,
                )
            pids: dict[str, int] = {}
            deadline = time.monotonic() + timeout_s  # both start in parallel
            for service in (redis_svc, kafka_svc):  # Redis is quick; Kafka takes seconds
                proc = started.get(service.name)
                pid = proc.pid if proc is not None else running[service.name].pid
                _wait_ready(service, pid, proc, deadline, timeout_s)
                if proc is not None:
                    log.info("%s ready on %s (pid %d)", service.name, service.address, pid)
                pids[service.name] = pid
        except BaseException:
            for name, proc in started.items():
                if proc.poll() is None:
                    log.info("stopping %s (pid %d) after the failed start", name, proc.pid)
                    stop_process(proc.pid)
            for service in (kafka_svc, redis_svc):
                if service.name in started:
                    remove_file(service.pid_file)
            raise

        info = StackInfo(
            kafka_bootstrap=kafka_bootstrap_for(settings),
            redis_url=redis_url_for(settings),
            env_file=stack_dir / ENV_FILE_NAME,
            kafka_pid=pids[kafka_svc.name],
            redis_pid=pids[redis_svc.name],
            reused=tuple(name for name in (kafka_svc.name, redis_svc.name) if name in running),
        )
        _write_env_file(info.env_file, info.env_lines())
        return info


# --- down -------------------------------------------------------------------------------------


def stack_down(settings: Settings) -> list[str]:
    """Stop exactly the processes ``up`` started (per their pid files); remove the env file.

    Each gets SIGTERM, then SIGKILL after 20 s. A pid file whose process is gone or is not ours
    is removed without signalling anything. Returns what was stopped, e.g.
    ``["kafka (pid 123)", "redis (pid 456)"]``; empty when nothing ran.
    """
    stack_dir = settings.stack_dir.resolve()
    if not stack_dir.is_dir():
        return []
    stopped: list[str] = []
    with file_lock(stack_dir / LOCK_FILE_NAME):
        for service in _services(settings):
            record = read_pid_file(service.pid_file)
            if record is None:
                remove_file(service.pid_file)
                continue
            if not is_our_process(record, service.markers):
                log.info("removing stale pid file %s (pid %d)", service.pid_file, record.pid)
                remove_file(service.pid_file)
                continue
            log.info("stopping %s (pid %d)...", service.name, record.pid)
            if not stop_process(record.pid):
                raise StackError(
                    f"the local {service.name} (pid {record.pid}) survived SIGTERM and SIGKILL; "
                    f"its pid file {service.pid_file} was kept."
                )
            remove_file(service.pid_file)
            stopped.append(f"{service.name} (pid {record.pid})")
        remove_file(stack_dir / ENV_FILE_NAME)
    return stopped


# --- status -----------------------------------------------------------------------------------


def _service_status(service: _Service) -> ServiceStatus:
    record = read_pid_file(service.pid_file)
    if record is not None and is_our_process(record, service.markers):
        note = "" if service.config_matches() else "started with other NBO_STACK_* ports"
        return ServiceStatus(
            service.name, service.address, record.pid, service.answers(PROBE_TIMEOUT_S), note
        )
    notes = []
    if record is not None:
        notes.append(f"stale pid file names pid {record.pid}")
    if port_in_use(service.main_port, HOST):
        notes.append(f"port {service.main_port} is used by another process")
    return ServiceStatus(service.name, service.address, None, False, "; ".join(notes))


def stack_status(settings: Settings) -> StackStatus:
    """What runs where: each service running or stopped, its pid, address, whether it answers.

    Read-only: creates, signals and removes nothing. Each probe waits at most 2 s.
    """
    env_file = env_file_for(settings)
    return StackStatus(
        services=tuple(_service_status(service) for service in _services(settings)),
        env_file=env_file,
        env_file_present=env_file.is_file(),
    )
