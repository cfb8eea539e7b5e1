"""How the test suite finds a real Kafka broker and Redis server.

Order: ``NBO_KAFKA_BOOTSTRAP`` / ``NBO_REDIS_URL`` from the environment; else testcontainers when a
Docker engine answers; else the local stack (``nbo stack up``), started for the test session and
stopped after it if the session started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

from app.settings import Settings

KAFKA_CHECK_TIMEOUT_S = 10.0
REDIS_CHECK_TIMEOUT_S = 3.0


class ServicesUnavailable(RuntimeError):
    """A required service could not be found or started."""


@dataclass(frozen=True)
class Services:
    """Where the real services of this test session are."""

    kafka_bootstrap: str
    redis_url: str
    source: str  # "environment" | "testcontainers" | "local-stack"


def services_required() -> bool:
    """In CI (``CI`` set) or with ``NBO_REQUIRE_SERVICES=1`` a missing service fails the run."""
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return ci or os.environ.get("NBO_REQUIRE_SERVICES", "") == "1"


def _docker_engine_answers() -> bool:
    try:
        import docker  # testcontainers depends on it

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def _testcontainers() -> Iterator[Services]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.redis import RedisContainer

    with KafkaContainer().with_kraft() as kafka, RedisContainer() as redis:
        host = redis.get_container_host_ip()
        port = redis.get_exposed_port(redis.port)
        yield Services(kafka.get_bootstrap_server(), f"redis://{host}:{port}/0", "testcontainers")


@contextlib.contextmanager
def _local_stack() -> Iterator[Services]:
    from app.stack import stack_down, stack_status, stack_up

    settings = Settings()
    was_running = stack_status(settings).all_running
    info = stack_up(settings)
    try:
        yield Services(info.kafka_bootstrap, info.redis_url, "local-stack")
    finally:
        if not was_running:
            stack_down(settings)


@contextlib.contextmanager
def discover_services() -> Iterator[Services]:
    """Yield the services for a test session, starting them if needed (see module doc)."""
    bootstrap = os.environ.get("NBO_KAFKA_BOOTSTRAP")
    redis_url = os.environ.get("NBO_REDIS_URL")
    if bootstrap and redis_url:
        yield Services(bootstrap, redis_url, "environment")
        return
    if _docker_engine_answers():
        with _testcontainers() as services:
            yield services
        return
    try:
        cm = _local_stack()
        services = cm.__enter__()
    except Exception as exc:
        raise ServicesUnavailable(f"could not start the local stack: {exc}") from exc
    try:
        yield services
    finally:
        cm.__exit__(None, None, None)


async def check_kafka(bootstrap: str, timeout_s: float = KAFKA_CHECK_TIMEOUT_S) -> None:
    """Raise ServicesUnavailable unless a Kafka metadata request succeeds within ``timeout_s``."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000)
    )
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        await asyncio.wait_for(admin.list_topics(), timeout_s)
    except Exception as exc:
        raise ServicesUnavailable(
            f"Kafka at {bootstrap} did not answer a metadata request within {timeout_s:.0f} s "
            f"({type(exc).__name__}: {exc}). Is the broker running? (`nbo stack status`)"
        ) from exc
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url)


async def check_redis(url: str, timeout_s: float = REDIS_CHECK_TIMEOUT_S) -> None:
    """Raise ServicesUnavailable unless Redis answers PING within ``timeout_s``."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(
        url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
    )
    try:
        await asyncio.wait_for(client.ping(), timeout_s)
    except Exception as exc:
        raise ServicesUnavailable(
            f"Redis at {redact(url)} did not answer PING within {timeout_s:.0f} s "
            f"({type(exc).__name__}: {exc}). Is it running? (`nbo stack status`)"
        ) from exc
    finally:
        await client.aclose()
