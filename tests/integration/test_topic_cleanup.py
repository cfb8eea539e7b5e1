"""A run's topics are deleted by their prefix, and only those."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from app.topics import TopicSpec, delete_topics_with_prefix, ensure_topics

pytestmark = pytest.mark.integration


async def test_deleting_a_runs_prefix_removes_its_topics_and_keeps_the_others(
    kafka_bootstrap: str, unique: Callable[[str], str]
) -> None:
    run = unique("run")
    other = unique("kept")
    ours = [f"{run}-events", f"{run}-offers"]
    await ensure_topics(kafka_bootstrap, [TopicSpec(t, 2, {}) for t in [*ours, other]])

    assert await delete_topics_with_prefix(kafka_bootstrap, f"{run}-") == sorted(ours)

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        left = set(await admin.list_topics())
        await admin.delete_topics([other])
    finally:
        await admin.close()
    assert other in left and not left & set(ours)


async def test_an_empty_prefix_deletes_nothing(kafka_bootstrap: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        await delete_topics_with_prefix(kafka_bootstrap, "")
