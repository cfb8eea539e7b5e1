"""A minimal Kafka wire-protocol client: enough to ask a broker for its metadata.

Used to decide that the local broker is *ready* (a bare TCP connect is not enough: the socket
opens before the broker serves requests). Blocking sockets, no threads, no asyncio, so it is safe
to call from anywhere. Speaks ``ApiVersions`` v0 to learn the supported ``Metadata`` versions,
then ``Metadata`` v4..v8 (the non-flexible versions Kafka 2.1 to 4.x all accept).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

API_METADATA = 3
API_VERSIONS = 18
METADATA_MIN_VERSION = 4
METADATA_MAX_VERSION = 8
CLIENT_ID = b"nbo-stack-probe"
MAX_RESPONSE_BYTES = 16 * 1024 * 1024


class KafkaProtocolError(Exception):
    """The broker's answer was an error or could not be understood."""


@dataclass(frozen=True)
class BrokerInfo:
    """One broker listed in a metadata response."""

    node_id: int
    host: str
    port: int


@dataclass(frozen=True)
class ClusterMetadata:
    """What a metadata response (asked for no topics) says about the cluster."""

    cluster_id: str | None
    controller_id: int
    brokers: tuple[BrokerInfo, ...]


class _Reader:
    """Reads big-endian Kafka primitives from a response body."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def _take(self, fmt: str) -> int:
        size = struct.calcsize(fmt)
        if self._pos + size > len(self._data):
            raise KafkaProtocolError("truncated response")
        (value,) = struct.unpack_from(fmt, self._data, self._pos)
        self._pos += size
        return int(value)

    def int16(self) -> int:
        return self._take(">h")

    def int32(self) -> int:
        return self._take(">i")

    def nullable_string(self) -> str | None:
        length = self.int16()
        if length < 0:
            return None
        if self._pos + length > len(self._data):
            raise KafkaProtocolError("truncated string")
        raw = self._data[self._pos : self._pos + length]
        self._pos += length
        return raw.decode("utf-8", errors="replace")

    def string(self) -> str:
        value = self.nullable_string()
        if value is None:
            raise KafkaProtocolError("unexpected null string")
        return value


def encode_request(api_key: int, api_version: int, correlation_id: int, body: bytes) -> bytes:
    """A size-prefixed request with a v1 header (key, version, correlation id, client id)."""
    header = struct.pack(">hhih", api_key, api_version, correlation_id, len(CLIENT_ID)) + CLIENT_ID
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def metadata_request_body(version: int) -> bytes:
    """Body of a non-flexible ``Metadata`` request (v4..v8) that asks for no topics."""
    if not METADATA_MIN_VERSION <= version <= METADATA_MAX_VERSION:
        raise ValueError(f"unsupported Metadata version {version}")
    body = struct.pack(">ib", 0, 0)  # topics: empty array (none); allow_auto_topic_creation
    if version >= 8:
        body += struct.pack(">bb", 0, 0)  # include cluster / topic authorized operations
    return body


def parse_api_versions_v0(body: bytes) -> dict[int, tuple[int, int]]:
    """``ApiVersions`` v0 response body -> ``{api_key: (min_version, max_version)}``."""
    reader = _Reader(body)
    error = reader.int16()
    if error != 0:
        raise KafkaProtocolError(f"ApiVersions error code {error}")
    count = reader.int32()
    versions: dict[int, tuple[int, int]] = {}
    for _ in range(max(count, 0)):
        key, low, high = reader.int16(), reader.int16(), reader.int16()
        versions[key] = (low, high)
    return versions


def parse_metadata(body: bytes) -> ClusterMetadata:
    """A non-flexible ``Metadata`` response body (v4..v8), topics ignored."""
    reader = _Reader(body)
    reader.int32()  # throttle_time_ms
    brokers: list[BrokerInfo] = []
    for _ in range(max(reader.int32(), 0)):
        node_id = reader.int32()
        host = reader.string()
        port = reader.int32()
        reader.nullable_string()  # rack
        brokers.append(BrokerInfo(node_id, host, port))
    cluster_id = reader.nullable_string()
    controller_id = reader.int32()
    return ClusterMetadata(cluster_id, controller_id, tuple(brokers))


def choose_metadata_version(versions: dict[int, tuple[int, int]]) -> int:
    """The lowest ``Metadata`` version in v4..v8 the broker supports."""
    if API_METADATA not in versions:
        raise KafkaProtocolError("broker does not list the Metadata API")
    low, high = versions[API_METADATA]
    chosen = max(low, METADATA_MIN_VERSION)
    if chosen > min(high, METADATA_MAX_VERSION):
        raise KafkaProtocolError(f"no common Metadata version (broker supports v{low}..v{high})")
    return chosen


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = sock.recv(min(remaining, 65536))
        if not chunk:
            raise KafkaProtocolError("connection closed by broker")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _call(
    sock: socket.socket, api_key: int, version: int, correlation_id: int, body: bytes
) -> bytes:
    sock.sendall(encode_request(api_key, version, correlation_id, body))
    (size,) = struct.unpack(">i", _recv_exact(sock, 4))
    if not 4 <= size <= MAX_RESPONSE_BYTES:
        raise KafkaProtocolError(f"implausible response size {size}")
    response = _recv_exact(sock, size)
    (got,) = struct.unpack_from(">i", response, 0)
    if got != correlation_id:
        raise KafkaProtocolError(f"correlation id {got} != {correlation_id}")
    return response[4:]


def fetch_metadata(host: str, port: int, timeout_s: float = 2.0) -> ClusterMetadata:
    """Ask the broker at ``host:port`` for cluster metadata; ``timeout_s`` per socket operation.

    Raises ``OSError`` when it cannot connect and :class:`KafkaProtocolError` on a bad answer.
    """
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        versions = parse_api_versions_v0(_call(sock, API_VERSIONS, 0, 1, b""))
        version = choose_metadata_version(versions)
        body = _call(sock, API_METADATA, version, 2, metadata_request_body(version))
        return parse_metadata(body)
