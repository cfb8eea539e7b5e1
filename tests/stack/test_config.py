"""What the local stack generates: server.properties, redis.conf, the env file, wire messages."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from app.stack import StackError, StackInfo
from app.stack.kafka import (
    KafkaPaths,
    new_cluster_id,
    parse_java_major,
    render_server_properties,
    validate_heap,
)
from app.stack.kafka_wire import (
    API_METADATA,
    KafkaProtocolError,
    choose_metadata_version,
    encode_request,
    metadata_request_body,
    parse_api_versions_v0,
    parse_metadata,
)
from app.stack.manager import render_env_lines
from app.stack.redis import RedisPaths, render_config

pytestmark = pytest.mark.unit


def _properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")
    return dict(pairs)


def test_server_properties_use_the_given_ports_on_loopback_only() -> None:
    props = _properties(render_server_properties(29092, 29093, Path("/data/k")))
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:29092"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:29093"
    assert props["process.roles"] == "broker,controller"
    assert props["log.dirs"] == "/data/k"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["share.coordinator.state.topic.min.isr"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"


def test_server_properties_escape_special_characters_in_paths() -> None:
    props = _properties(render_server_properties(1, 2, Path("/a b/c:d=e")))
    assert props["log.dirs"] == "/a b/c\\:d\\=e"


def test_kafka_paths_are_absolute_and_versioned(tmp_path: Path) -> None:
    paths = KafkaPaths.create(tmp_path / "stack", Path("rel/cache"), "4.1.1")
    assert paths.libs.is_absolute() and paths.libs.parts[-2:] == ("kafka-4.1.1", "libs")
    assert paths.pid_file == tmp_path / "stack" / "kafka" / "kafka.pid"
    assert str(paths.server_properties) in paths.cmdline_markers


def test_redis_config_is_private_and_persists_to_an_append_only_file(tmp_path: Path) -> None:
    paths = RedisPaths.create(tmp_path / 'my "stack"')
    lines = render_config(26379, paths).splitlines()
    for expected in (
        "bind 127.0.0.1",
        "port 26379",
        "protected-mode yes",
        "daemonize no",
        "appendonly yes",
        "appendfsync everysec",
        'save ""',
    ):
        assert expected in lines
    escaped = str(paths.data_dir).replace('"', '\\"')
    assert f'dir "{escaped}"' in lines


def test_env_lines_are_exactly_the_two_settings() -> None:
    assert render_env_lines("127.0.0.1:19092", "redis://127.0.0.1:16379/0") == [
        "export NBO_KAFKA_BOOTSTRAP=127.0.0.1:19092",
        "export NBO_REDIS_URL=redis://127.0.0.1:16379/0",
    ]
    info = StackInfo("127.0.0.1:1", "redis://127.0.0.1:2/0", Path("env"), 10, 11)
    assert info.env_lines() == render_env_lines("127.0.0.1:1", "redis://127.0.0.1:2/0")


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_301"', 8),
        ("no java here", None),
    ],
)
def test_java_major_version_is_parsed(output: str, major: int | None) -> None:
    assert parse_java_major(output) == major


def test_heap_size_is_validated() -> None:
    assert validate_heap("512m") == "512m"
    assert validate_heap("1G") == "1G"
    with pytest.raises(StackError, match="NBO_STACK_KAFKA_HEAP"):
        validate_heap("lots")


def test_cluster_ids_look_like_kafka_uuids() -> None:
    ids = {new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for value in ids:
        assert len(value) == 22 and not value.startswith("-")


def test_requests_are_size_prefixed_with_a_v1_header() -> None:
    raw = encode_request(18, 0, 7, b"")
    (size,) = struct.unpack(">i", raw[:4])
    assert size == len(raw) - 4
    assert struct.unpack(">hhih", raw[4:14]) == (18, 0, 7, len(b"nbo-stack-probe"))
    assert metadata_request_body(4) == b"\x00\x00\x00\x00\x00"
    assert len(metadata_request_body(8)) == 7


def test_api_versions_response_selects_a_metadata_version() -> None:
    body = struct.pack(">hi", 0, 2) + struct.pack(">hhh", 18, 0, 4) + struct.pack(">hhh", 3, 0, 13)
    versions = parse_api_versions_v0(body)
    assert versions[API_METADATA] == (0, 13)
    assert choose_metadata_version(versions) == 4
    assert choose_metadata_version({API_METADATA: (6, 13)}) == 6
    with pytest.raises(KafkaProtocolError):
        choose_metadata_version({API_METADATA: (9, 13)})
    with pytest.raises(KafkaProtocolError):
        parse_api_versions_v0(struct.pack(">hi", 35, 0))


def test_metadata_response_lists_brokers() -> None:
    host = b"127.0.0.1"
    body = (
        struct.pack(">i", 0)  # throttle
        + struct.pack(">i", 1)  # one broker
        + struct.pack(">ih", 1, len(host))
        + host
        + struct.pack(">ih", 19092, -1)  # port, null rack
        + struct.pack(">h", 4)
        + b"abcd"  # cluster id
        + struct.pack(">i", 1)  # controller
        + struct.pack(">i", 0)  # no topics
    )
    metadata = parse_metadata(body)
    assert metadata.cluster_id == "abcd"
    assert metadata.controller_id == 1
    assert [(b.node_id, b.host, b.port) for b in metadata.brokers] == [(1, "127.0.0.1", 19092)]
    with pytest.raises(KafkaProtocolError):
        parse_metadata(body[:10])
