"""Client options for Kafka and Redis from the settings: plaintext, TLS, mutual TLS, SASL.

One place builds them, so the worker, the catalogue feed, the topic admin and every command
connect the same way. :func:`check_connections` is the start-up check: wrong credentials or an
unreachable service give one clear line (:class:`ConnectionProblem`), not a retry loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError

from app.settings import Settings, kafka_bootstrap_or_local, redis_url_or_local
from app.storage.resp import PackedConnection, PackedSSLConnection


class ConnectionProblem(RuntimeError):
    """A service cannot be used as configured; the message is one line for the operator."""


def kafka_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """TLS context for Kafka (CA, and client certificate for mutual TLS), if TLS is on."""
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    context = ssl.create_default_context(
        cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    )
    if settings.kafka_ssl_certfile:
        context.load_cert_chain(
            str(settings.kafka_ssl_certfile),
            str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
        )
    return context


def kafka_client_kwargs(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (bootstrap servers and security)."""
    kwargs: dict[str, Any] = {
        "bootstrap_servers": kafka_bootstrap_or_local(settings),
        "security_protocol": settings.kafka_security_protocol,
    }
    context = kafka_ssl_context(settings)
    if context is not None:
        kwargs["ssl_context"] = context
    if settings.kafka_security_protocol.startswith("SASL"):
        kwargs["sasl_mechanism"] = settings.kafka_sasl_mechanism
        kwargs["sasl_plain_username"] = settings.kafka_sasl_username
        password = settings.kafka_sasl_password
        kwargs["sasl_plain_password"] = password.get_secret_value() if password else None
    return kwargs


def faust_credentials(settings: Settings) -> Any:
    """faust ``broker_credentials`` for the settings, or ``None`` for plaintext."""
    import faust

    protocol = settings.kafka_security_protocol
    context = kafka_ssl_context(settings)
    if protocol.startswith("SASL"):
        password = settings.kafka_sasl_password
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=password.get_secret_value() if password else None,
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def redis_client(settings: Settings) -> aioredis.Redis | RedisCluster:
    """The Redis client (``rediss://`` for TLS; ACL user and password in the URL); the
    cluster client when ``NBO_REDIS_CLUSTER`` is set."""
    options: dict[str, Any] = {"socket_timeout": 5, "socket_connect_timeout": 5}
    if settings.redis_ssl_ca:
        options["ssl_ca_certs"] = str(settings.redis_ssl_ca)
    if settings.redis_ssl_certfile:
        options["ssl_certfile"] = str(settings.redis_ssl_certfile)
        options["ssl_keyfile"] = str(settings.redis_ssl_keyfile or settings.redis_ssl_certfile)
    url = redis_url_or_local(settings)
    if not url.startswith("rediss://"):
        options = {k: v for k, v in options.items() if not k.startswith("ssl_")}
    if settings.redis_cluster:
        return RedisCluster.from_url(url, **options)
    packed = PackedSSLConnection if url.startswith("rediss://") else PackedConnection
    if url.startswith(("redis://", "rediss://")):  # not unix://: its own connection class
        options["connection_class"] = packed
    return aioredis.Redis.from_url(url, **options)


async def check_connections(settings: Settings, timeout_s: float = 15.0) -> None:
    """Raise :class:`ConnectionProblem` unless Kafka answers a metadata request and Redis PING."""
    await _check_kafka(settings, timeout_s)
    await _check_redis(settings, timeout_s)


async def _check_kafka(settings: Settings, timeout_s: float) -> None:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    kwargs = kafka_client_kwargs(settings)
    where = f"Kafka at {kwargs['bootstrap_servers']} ({settings.kafka_security_protocol}"
    if settings.kafka_security_protocol.startswith("SASL"):
        where += f", {settings.kafka_sasl_mechanism} user {settings.kafka_sasl_username!r}"
    where += ")"
    admin = AIOKafkaAdminClient(request_timeout_ms=int(timeout_s * 1000), **kwargs)
    # aiokafka logs the broker's SASL verdict and then raises a generic bootstrap error:
    # capture its log (instead of printing it) to tell bad credentials from a dead broker
    captured = _CapturedLog()
    client_log = logging.getLogger("aiokafka")
    client_log.addHandler(captured)
    propagate, client_log.propagate = client_log.propagate, False
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        await asyncio.wait_for(admin.list_topics(), timeout_s)
    except (KafkaError, OSError, ssl.SSLError, TimeoutError) as exc:
        detail = str(exc) or type(exc).__name__
        auth = captured.find("authentication")
        if auth is not None or "authentication" in detail.lower():
            raise ConnectionProblem(f"{where}: authentication failed: {auth or detail}") from exc
        raise ConnectionProblem(f"{where}: not reachable: {detail}") from exc
    finally:
        client_log.removeHandler(captured)
        client_log.propagate = propagate
        with contextlib.suppress(Exception):  # closing a client that never started
            await admin.close()


class _CapturedLog(logging.Handler):
    """Keeps the messages of a logger for a moment."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def find(self, word: str) -> str | None:
        """The first captured message containing ``word`` (case-insensitive), trimmed."""
        for message in self.messages:
            if word in message.lower():
                return message.split(": ", 1)[-1][:300]
        return None


async def _check_redis(settings: Settings, timeout_s: float) -> None:
    client = redis_client(settings)
    url = redis_url_or_local(settings)
    where = f"Redis at {url.split('@')[-1]}"
    try:
        await asyncio.wait_for(client.ping(), timeout_s)
    except AuthenticationError as exc:
        raise ConnectionProblem(f"{where}: authentication failed: {exc}") from exc
    except ResponseError as exc:  # e.g. NOPERM for a user without PING
        raise ConnectionProblem(f"{where}: refused: {exc}") from exc
    except (RedisConnectionError, OSError, TimeoutError) as exc:
        raise ConnectionProblem(f"{where}: not reachable: {exc}") from exc
    finally:
        await client.aclose()
