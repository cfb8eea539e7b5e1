"""The identity of a Kafka topic: its topic id, which changes when the topic is recreated.

A topic deleted and created again under the same name (or mirrored to another cluster) starts
its offsets again from 0; offsets recorded for the old one would make every new event look
already applied. Kafka (2.8 and later) gives every topic a unique id (a UUID, printed by
``kafka-topics.sh --describe`` as ``TopicId``); the worker asks for it at start and at every
rebalance, and keys the offsets it stores by it (see :mod:`app.core.profile`).

aiokafka (0.14) speaks ``Metadata`` only up to v5, which has no topic ids; this module adds
the request at v10 (the first version whose answer carries the id; flexible encoding) on
aiokafka's own client and connection, so TLS and SASL settings apply as for any client.
The id is returned as Kafka prints it: URL-safe base64 of the 16 bytes, without padding.
"""

from __future__ import annotations

import base64
import logging
from io import BytesIO
from typing import Any, ClassVar

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError
from aiokafka.protocol.abstract import AbstractType
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    Boolean,
    CompactArray,
    CompactString,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

log = logging.getLogger(__name__)

METADATA_API_KEY = 3
TOPIC_ID_VERSION = 10
ZERO_ID = bytes(16)


class TopicIdUnavailable(Exception):
    """The broker cannot tell topic ids (older than Kafka 2.8) or did not answer."""


class _Uuid(AbstractType[bytes]):  # type: ignore[misc]  # aiokafka has no types
    """Kafka's ``uuid`` type: 16 raw bytes."""

    @classmethod
    def encode(cls, value: bytes) -> bytes:
        if len(value) != 16:
            raise ValueError("a uuid has 16 bytes")
        return value

    @classmethod
    def decode(cls, data: BytesIO) -> bytes:
        value = data.read(16)
        if len(value) != 16:
            raise ValueError("buffer underrun decoding a uuid")
        return value


class _MetadataResponseV10(Response):  # type: ignore[misc]
    API_KEY = METADATA_API_KEY
    API_VERSION = TOPIC_ID_VERSION
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "brokers",
            CompactArray(
                ("node_id", Int32),
                ("host", CompactString("utf-8")),
                ("port", Int32),
                ("rack", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("cluster_id", CompactString("utf-8")),
        ("controller_id", Int32),
        (
            "topics",
            CompactArray(
                ("error_code", Int16),
                ("name", CompactString("utf-8")),
                ("topic_id", _Uuid),
                ("is_internal", Boolean),
                (
                    "partitions",
                    CompactArray(
                        ("error_code", Int16),
                        ("partition_index", Int32),
                        ("leader_id", Int32),
                        ("leader_epoch", Int32),
                        ("replica_nodes", CompactArray(Int32)),
                        ("isr_nodes", CompactArray(Int32)),
                        ("offline_replicas", CompactArray(Int32)),
                        ("tags", TaggedFields),
                    ),
                ),
                ("topic_authorized_operations", Int32),
                ("tags", TaggedFields),
            ),
        ),
        ("cluster_authorized_operations", Int32),
        ("tags", TaggedFields),
    )


class _MetadataRequestV10(RequestStruct):  # type: ignore[misc]
    FLEXIBLE_VERSION: ClassVar[bool] = True
    API_KEY = METADATA_API_KEY
    API_VERSION = TOPIC_ID_VERSION
    RESPONSE_TYPE = _MetadataResponseV10
    SCHEMA = Schema(
        (
            "topics",
            CompactArray(
                ("topic_id", _Uuid), ("name", CompactString("utf-8")), ("tags", TaggedFields)
            ),
        ),
        ("allow_auto_topic_creation", Boolean),
        ("include_cluster_authorized_operations", Boolean),
        ("include_topic_authorized_operations", Boolean),
        ("tags", TaggedFields),
    )


class _TopicIdRequest(Request[_MetadataRequestV10]):  # type: ignore[misc]
    API_KEY = METADATA_API_KEY

    def __init__(self, topics: list[str]) -> None:
        self._topics = topics

    def build(self, request_struct_class: type[_MetadataRequestV10]) -> _MetadataRequestV10:
        return request_struct_class(
            [(ZERO_ID, name, {}) for name in self._topics], False, False, False, {}
        )


def format_topic_id(raw: bytes) -> str:
    """Kafka's text form of a topic id: URL-safe base64 without padding (22 characters)."""
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def topic_ids_of(response: Any) -> dict[str, str]:
    """Topic name -> id from a v10 metadata answer; topics with an error or no id are left
    out."""
    out: dict[str, str] = {}
    for error_code, name, raw_id, *_ in response.topics:
        if error_code == 0 and name and raw_id != ZERO_ID:
            out[name] = format_topic_id(raw_id)
    return out


async def fetch_topic_ids(client_kwargs: dict[str, Any], topics: list[str]) -> dict[str, str]:
    """The Kafka topic ids of ``topics`` (those that exist), from one metadata request.

    ``client_kwargs``: aiokafka client arguments (:func:`app.connections.kafka_client_kwargs`).
    Raises :class:`TopicIdUnavailable` when the broker cannot tell (too old) or is out of
    reach.
    """
    client = AIOKafkaClient(**client_kwargs)
    try:
        await client.bootstrap()
        node = client.get_random_node()
        if node is None:
            raise TopicIdUnavailable("no broker to ask")
        response = await client.send(node, _TopicIdRequest(topics))
    except NotImplementedError as exc:  # the broker's Metadata versions stop below v10
        raise TopicIdUnavailable(f"the broker does not give topic ids ({exc})") from exc
    except (OSError, KafkaError) as exc:
        raise TopicIdUnavailable(f"the broker is out of reach ({exc})") from exc
    finally:
        await client.close()
    return topic_ids_of(response)
