"""Secure connections for real: a SCRAM-SHA-512 listener on a local broker, and Redis over
TLS with the ACL users shipped in deploy/redis/users.acl. Wrong credentials give one clear
line and a non-zero exit, not a retry loop."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

from app.commands.topic_source import TopicSource
from app.connections import kafka_client_kwargs
from app.settings import Settings
from app.stack import stack_down, stack_up
from app.topics import ensure_topics, topic_specs
from tests.support.kafka_io import as_json, produce, read_topic
from tests.support.redis_server import PrivateRedis
from tests.support.worker import ApiProcess, WorkerEnv, WorkerProcess, free_port

pytestmark = pytest.mark.integration

ACL_FILE = Path(__file__).parents[2] / "deploy" / "redis" / "users.acl"
SCRAM_USER, SCRAM_PASSWORD = "nbo-test", "scram-secret-1"
REDIS_PASSWORD = "redis-worker-secret"


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A second local broker (own dir and ports) with a SASL_PLAINTEXT/SCRAM listener."""
    stack = Settings(
        stack_dir=tmp_path_factory.mktemp("sasl-stack"),
        stack_kafka_port=free_port(),
        stack_controller_port=free_port(),
        stack_redis_port=free_port(),
        stack_kafka_sasl_port=free_port(),
        stack_kafka_sasl_username=SCRAM_USER,
        stack_kafka_sasl_password=SCRAM_PASSWORD,  # type: ignore[arg-type]
    )
    stack_up(stack)
    try:
        yield stack
    finally:
        stack_down(stack)


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrivateRedis, Path]]:
    """redis-server over TLS only, with the repository's ACL users (test passwords)."""
    folder = tmp_path_factory.mktemp("tls-redis")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "server.pem", folder / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server.cert_chain_pems[0].write_to_path(str(cert_file))
    server.private_key_pem.write_to_path(str(key_file))
    worker_hash = hashlib.sha256(REDIS_PASSWORD.encode()).hexdigest()
    lookup_hash = hashlib.sha256(b"lookup-secret").hexdigest()
    acl = (
        ACL_FILE.read_text()
        .replace("REPLACE_WITH_SHA256_OF_THE_WORKER_PASSWORD", worker_hash)
        .replace("REPLACE_WITH_SHA256_OF_THE_LOOKUP_PASSWORD", lookup_hash)
    )
    acl_file = folder / "users.acl"
    acl_file.write_text(acl + "\nuser default off\n")
    redis = PrivateRedis(folder / "data", free_port(), (ca_file, cert_file, key_file), acl_file)
    redis.start()
    try:
        yield redis, ca_file
    finally:
        redis.stop()


def secure_env(
    sasl_broker: Settings, redis: PrivateRedis, ca_file: Path, kafka_password: str,
    redis_password: str,
) -> dict[str, str]:  # fmt: skip
    return {
        "NBO_KAFKA_BOOTSTRAP": f"127.0.0.1:{sasl_broker.stack_kafka_sasl_port}",
        "NBO_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "NBO_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "NBO_KAFKA_SASL_USERNAME": SCRAM_USER,
        "NBO_KAFKA_SASL_PASSWORD": kafka_password,
        "NBO_REDIS_URL": f"rediss://nbo-worker:{redis_password}@127.0.0.1:{redis.port}/0",
        "NBO_REDIS_SSL_CA": str(ca_file),
    }


def run_worker_expecting_failure(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agents.cli", "worker"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_worker_runs_over_scram_kafka_and_tls_redis_with_acl_users(
    sasl_broker: Settings,
    tls_redis: tuple[PrivateRedis, Path],
    unique: Callable[[str], str],
    tmp_path: Path,
) -> None:
    redis, ca_file = tls_redis
    env = WorkerEnv("unused", "unused", unique("secure"))
    env.extra = secure_env(sasl_broker, redis, ca_file, SCRAM_PASSWORD, REDIS_PASSWORD)
    env_vars = env.env() | env.extra
    env.kafka_bootstrap, env.redis_url = env_vars["NBO_KAFKA_BOOTSTRAP"], env_vars["NBO_REDIS_URL"]
    settings = env.settings()
    kafka = kafka_client_kwargs(settings)
    await ensure_topics(kafka, topic_specs(settings))
    offer = {"offer_id": "o1", "title": "Tent", "tags": ["outdoor"], "value": 3.0,
             "channels": ["web"]}  # fmt: skip
    await produce(kafka, settings.topic_offer_catalog, [(b"o1", as_json(offer))])

    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        user = f"frank-{env.token}"
        event = {"event_id": "s1", "user_id": user, "type": "like", "item_id": "tent-1",
                 "tags": ["outdoor"], "ts": int(time.time() * 1000)}  # fmt: skip
        await produce(kafka, settings.topic_user_events, [(user.encode(), as_json(event))])
        messages = await read_topic(kafka, settings.topic_offers, expect=1, timeout_s=20)
        assert [m.key for m in messages] == [user.encode()], worker.tail()
        api = ApiProcess(env, tmp_path / "api.log").start()  # the lookups, as securely
        try:
            api.wait_ready()
            status, body = api.get_json(f"/users/{user}/profile")
        finally:
            api.stop()
        assert status == 200 and body["n_events"] == 1
    finally:
        worker.stop()


def test_a_wrong_kafka_password_exits_with_one_clear_line(
    sasl_broker: Settings, tls_redis: tuple[PrivateRedis, Path]
) -> None:
    redis, ca_file = tls_redis
    started = time.monotonic()
    result = run_worker_expecting_failure(
        secure_env(sasl_broker, redis, ca_file, "wrong-password", REDIS_PASSWORD)
    )
    assert result.returncode == 3, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("nbo: ")]
    assert len(lines) == 1 and "authentication failed" in lines[0], result.stderr[-2000:]
    assert SCRAM_USER in lines[0] and "wrong-password" not in result.stderr
    assert time.monotonic() - started < 45


def test_a_wrong_redis_password_exits_with_one_clear_line(
    sasl_broker: Settings, tls_redis: tuple[PrivateRedis, Path]
) -> None:
    redis, ca_file = tls_redis
    result = run_worker_expecting_failure(
        secure_env(sasl_broker, redis, ca_file, SCRAM_PASSWORD, "not-the-password")
    )
    assert result.returncode == 3, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("nbo: ")]
    assert len(lines) == 1 and "Redis" in lines[0] and "authentication failed" in lines[0]
    assert "not-the-password" not in result.stderr


async def test_embed_from_topic_reads_the_topics_over_scram_kafka(
    sasl_broker: Settings, unique: Callable[[str], str]
) -> None:
    settings = Settings(
        kafka_bootstrap=f"127.0.0.1:{sasl_broker.stack_kafka_sasl_port}",
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username=SCRAM_USER,
        kafka_sasl_password=SCRAM_PASSWORD,
        topic_user_events=unique("events"),
        topic_item_catalog=unique("items"),
    )
    kafka = kafka_client_kwargs(settings)
    specs = [s for s in topic_specs(settings) if s.name in {settings.topic_user_events,
             settings.topic_item_catalog}]  # fmt: skip
    await ensure_topics(kafka, specs)
    events = [
        {"event_id": f"e{n}", "user_id": f"u{n % 3}", "type": "like", "item_id": f"i{n % 4}",
         "tags": ["outdoor"], "ts": int(time.time() * 1000)}
        for n in range(12)
    ]  # fmt: skip
    await produce(kafka, settings.topic_user_events, [(None, as_json(e)) for e in events])
    item = {"item_id": "i0", "title": "Tent", "tags": ["outdoor"]}
    await produce(kafka, settings.topic_item_catalog, [(b"i0", as_json(item))])

    source = TopicSource.from_settings(settings, progress=False)
    data = await asyncio.wait_for(asyncio.to_thread(source.load), 60)

    assert len(data.log) == 12
    titles = {i.item_id: i.title for i in data.items}
    assert titles == {"i0": "Tent", "i1": None, "i2": None, "i3": None}
