"""A Redis failover to a lagging replica, with a real worker, broker, primary and replica:
replication stops (the replica detaches), events flow, the primary dies (kill -9), the
replica becomes the primary and a new worker is pointed at it. With commits waiting for the replica
(``NBO_REDIS_ACK_REPLICAS=1``) nothing is lost: offsets of writes the replica never got were
never committed, so those events are consumed again. With the rule off the test shows the
loss: the offsets were committed, the writes died with the primary."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from app.storage.keys import user_keys
from tests.integration.test_worker_end_to_end import catalogue_records
from tests.support.barrier import markers_applied, produce_markers
from tests.support.kafka_io import as_json, create_topics_with_catalogue, produce
from tests.support.redis_server import PrivateRedis
from tests.support.waiting import wait_for
from tests.support.worker import WorkerEnv, WorkerProcess, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

USERS, PER_ROUND = 8, 4


def events(token: str, round_: int) -> list[tuple[bytes, bytes]]:
    out = []
    for u in range(USERS):
        user = f"f{u}-{token}"
        for k in range(PER_ROUND):
            body = {"event_id": f"{user}-{round_}-{k}", "user_id": user, "type": "view",
                    "item_id": f"i{k % 4}", "ts": int(time.time() * 1000)}  # fmt: skip
            out.append((user.encode(), as_json(body)))
    return out


async def applied(client: aioredis.Redis, token: str) -> int:
    total = 0
    for u in range(USERS):
        value = await client.hget(user_keys(f"f{u}-{token}").profile, "n_events")
        total += int(value or 0)
    return total


async def offsets_committed(bootstrap: str, group: str, topic: str, partitions: int) -> bool:
    """Whether the group's committed offsets reached the end of every partition of topic
    that has records."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return all(
            tp in committed and committed[tp].offset >= end for tp, end in ends.items() if end
        )
    finally:
        await consumer.stop()
        await admin.close()


@pytest.mark.parametrize("ack_replicas", [1, 0], ids=["rule-on", "rule-off"])
async def test_a_failover_to_a_lagging_replica_loses_nothing_only_with_the_rule(
    ack_replicas: int,
    kafka_bootstrap: str,
    unique: Callable[[str], str],
    tmp_path: Path,
) -> None:
    primary = PrivateRedis(
        tmp_path / "primary", free_port(), extra_args=("--repl-diskless-sync-delay", "0")
    ).start()
    replica = PrivateRedis(
        tmp_path / "replica", free_port(),
        extra_args=("--replicaof", "127.0.0.1", str(primary.port)),
    ).start()  # fmt: skip
    on_primary = aioredis.Redis.from_url(primary.url)
    on_replica = aioredis.Redis.from_url(replica.url)
    first = WorkerEnv(
        kafka_bootstrap, primary.url, unique("fo"),
        extra={"NBO_REDIS_ACK_REPLICAS": str(ack_replicas), "NBO_REDIS_ACK_TIMEOUT_MS": "300"},
    )  # fmt: skip
    s = first.settings()
    token = first.token
    worker: WorkerProcess | None = None
    try:

        async def linked() -> bool:
            link = (await on_primary.info("replication")).get("slave0")
            return isinstance(link, dict) and link.get("state") == "online"

        assert await wait_for(linked, 20)
        await create_topics_with_catalogue(kafka_bootstrap, s, *catalogue_records())
        worker = WorkerProcess(first, tmp_path / "worker-1.log").start()
        worker.wait_ready()
        await produce(kafka_bootstrap, s.topic_user_events, events(token, 1))
        done = USERS * PER_ROUND

        async def replicated() -> bool:
            return await applied(on_replica, token) == done

        assert await wait_for(replicated, 60), worker.tail()

        # replication stops here (the replica detaches: everything after this is on the
        # primary only, as on an asynchronously replicated replica that fell behind)
        await on_replica.execute_command("REPLICAOF", "NO", "ONE")
        await produce(kafka_bootstrap, s.topic_user_events, events(token, 2))
        if ack_replicas:  # the worker cannot get the replica's acknowledgement: it retries

            async def retrying() -> bool:
                assert worker is not None
                return worker.metrics().get("nbo_batch_retries", 0) >= 2

            assert await wait_for(retrying, 60), worker.tail()
        else:  # the primary acknowledged: applied there, offsets committed

            async def committed() -> bool:
                return await applied(on_primary, token) == 2 * done and await offsets_committed(
                    kafka_bootstrap, s.app_id, s.topic_user_events, s.user_events_partitions
                )

            assert await wait_for(committed, 60), worker.tail()

        primary.signal(signal.SIGKILL)  # the primary dies with what the replica never got
        worker.kill()
        worker = None
        # the replica, already detached, now serves as the primary

        # a new worker of the same group on the promoted replica (which has no replica)
        second = WorkerEnv(
            kafka_bootstrap, replica.url, token, web_port=free_port(), api_port=free_port(),
            extra={"NBO_APP_ID": s.app_id},
        )  # fmt: skip
        worker = WorkerProcess(second, tmp_path / "worker-2.log").start()
        worker.wait_ready()
        markers = await produce_markers(
            kafka_bootstrap, s.topic_user_events, s.user_events_partitions, token
        )
        assert await markers_applied(on_replica, markers), worker.tail()

        lost = 2 * done - await applied(on_replica, token)
        if ack_replicas:
            assert lost == 0
        else:
            assert lost > 0  # the test sees the loss the rule prevents
    finally:
        if worker is not None:
            worker.stop()
        await on_primary.aclose()
        await on_replica.aclose()
        for server in (replica, primary):
            if server.proc is not None:
                server.signal(signal.SIGCONT)
                server.signal(signal.SIGKILL)
