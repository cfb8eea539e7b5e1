"""Shared fixtures: real services for integration tests, unique names for every test.

Markers (``--strict-markers``): ``unit`` (pure core), ``agents`` (faust test_context, no broker),
``integration`` (real Kafka and Redis). Integration tests are never skipped silently: when ``CI``
or ``NBO_REQUIRE_SERVICES=1`` is set, a missing service fails the run.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
import redis.asyncio as aioredis
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.storage.resp import PackedConnection
from tests.support.services import (
    Services,
    ServicesUnavailable,
    check_kafka,
    check_redis,
    discover_services,
    services_required,
)


def _unavailable(message: str) -> None:
    if services_required():
        pytest.fail(f"required service unavailable: {message}", pytrace=False)
    pytest.skip(f"services unavailable (set CI=1 or NBO_REQUIRE_SERVICES=1 to fail): {message}")


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    """The session's real Kafka broker and Redis server (see tests/support/services.py)."""
    try:
        with discover_services() as found:
            yield found
    except ServicesUnavailable as exc:
        _unavailable(str(exc))


@pytest.fixture(autouse=True)
async def _services_answer(request: pytest.FixtureRequest) -> None:
    """Before each integration test: fail fast and clearly when a service stopped answering."""
    if request.node.get_closest_marker("integration") is None:
        return
    found: Services = request.getfixturevalue("services")
    try:
        await check_kafka(found.kafka_bootstrap)
        await check_redis(found.redis_url)
    except ServicesUnavailable as exc:
        _unavailable(str(exc))


@pytest.fixture
def kafka_bootstrap(services: Services) -> str:
    return services.kafka_bootstrap


@pytest.fixture
def redis_url(services: Services) -> str:
    return services.redis_url


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Factory of names unique to this test: ``unique("events")`` -> ``events-3f9c2a1b``."""
    token = uuid.uuid4().hex[:8]
    return lambda prefix: f"{prefix}-{token}"


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    # the worker's connection class (app.connections.redis_client): commands packed by hiredis
    client = aioredis.Redis.from_url(
        redis_url, socket_timeout=10, connection_class=PackedConnection
    )
    try:
        yield client
    finally:
        await client.aclose()


NewTopicFactory = Callable[..., Awaitable[str]]


@pytest.fixture
async def new_topic(
    kafka_bootstrap: str, unique: Callable[[str], str]
) -> AsyncIterator[NewTopicFactory]:
    """Create topics with unique names for this test; deleted afterwards."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap, request_timeout_ms=10_000)
    await admin.start()
    created: list[str] = []

    async def make(prefix: str, partitions: int = 1, config: dict[str, str] | None = None) -> str:
        name = unique(prefix)
        await admin.create_topics(
            [
                NewTopic(
                    name,
                    num_partitions=partitions,
                    replication_factor=1,
                    topic_configs=config or {},
                )
            ]
        )
        created.append(name)
        return name

    try:
        yield make
    finally:
        if created:
            try:
                await admin.delete_topics(created)
            finally:
                await admin.close()
        else:
            await admin.close()
