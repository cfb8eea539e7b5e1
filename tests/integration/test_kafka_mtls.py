"""Kafka with mutual TLS for real: a local broker listener that requires a client certificate
(certificates made in the test), the worker consuming and publishing through it, and a client
without a certificate refused with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from app.connections import kafka_client_kwargs
from app.settings import Settings
from app.stack import stack_down, stack_up
from tests.integration.test_worker_end_to_end import catalogue_records, event
from tests.support.kafka_io import create_topics_with_catalogue, produce, read_topic
from tests.support.worker import WorkerEnv, WorkerProcess, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@dataclass(frozen=True)
class Pki:
    ca: Path
    client_cert: Path
    client_key: Path


@dataclass(frozen=True)
class TlsBroker:
    port: int
    pki: Pki


def pkcs8(pem: bytes) -> bytes:
    """A PEM private key as unencrypted PKCS#8 (what a Kafka PEM keystore takes)."""
    key = serialization.load_pem_private_key(pem, password=None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    """A second local broker (own dir and ports) with a listener requiring client certs."""
    folder = tmp_path_factory.mktemp("mtls")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("nbo-worker.example")
    keystore, truststore = folder / "broker.pem", folder / "ca.pem"
    chain = b"".join(blob.bytes() for blob in server.cert_chain_pems)
    keystore.write_bytes(pkcs8(server.private_key_pem.bytes()) + chain)
    ca.cert_pem.write_to_path(str(truststore))
    client_cert, client_key = folder / "client.pem", folder / "client-key.pem"
    client_cert.write_bytes(b"".join(blob.bytes() for blob in client.cert_chain_pems))
    client.private_key_pem.write_to_path(str(client_key))
    port = free_port()
    stack = Settings(
        stack_dir=folder / "stack",
        stack_kafka_port=free_port(),
        stack_controller_port=free_port(),
        stack_redis_port=free_port(),
        stack_kafka_ssl_port=port,
        stack_kafka_ssl_keystore=keystore,
        stack_kafka_ssl_truststore=truststore,
    )
    stack_up(stack)
    try:
        yield TlsBroker(port, Pki(truststore, client_cert, client_key))
    finally:
        stack_down(stack)


def mtls_env(broker: TlsBroker, with_certificate: bool = True) -> dict[str, str]:
    env = {
        "NBO_KAFKA_BOOTSTRAP": f"127.0.0.1:{broker.port}",
        "NBO_KAFKA_SECURITY_PROTOCOL": "SSL",
        "NBO_KAFKA_SSL_CAFILE": str(broker.pki.ca),
    }
    if with_certificate:
        env["NBO_KAFKA_SSL_CERTFILE"] = str(broker.pki.client_cert)
        env["NBO_KAFKA_SSL_KEYFILE"] = str(broker.pki.client_key)
    return env


async def test_the_worker_consumes_and_publishes_over_mutual_tls(
    tls_broker: TlsBroker, redis_url: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    env = WorkerEnv("unused", redis_url, unique("mtls"), extra=mtls_env(tls_broker))
    env.kafka_bootstrap = env.extra["NBO_KAFKA_BOOTSTRAP"]
    settings = env.settings()
    kafka = kafka_client_kwargs(settings)
    assert "ssl_context" in kafka
    await create_topics_with_catalogue(kafka, settings, *catalogue_records())
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        user = f"mia-{env.token}"
        await produce(kafka, settings.topic_user_events, [event("m1", user, "i0")])
        messages = await read_topic(kafka, settings.topic_offers, expect=1, timeout_s=30)
        assert [m.key for m in messages] == [user.encode()], worker.tail()
    finally:
        worker.stop()


def test_a_client_without_a_certificate_is_refused_with_one_clear_line(
    tls_broker: TlsBroker, redis_url: str
) -> None:
    env = {**os.environ, **mtls_env(tls_broker, with_certificate=False), "NBO_REDIS_URL": redis_url}
    result = subprocess.run(
        [sys.executable, "-m", "agents.cli", "worker"],
        env=env, capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("nbo: ")]
    assert len(lines) == 1 and f"127.0.0.1:{tls_broker.port} (SSL)" in lines[0], result.stderr
