"""The topic-id metadata answer is read as Kafka writes it (flexible v10), ids in Kafka's text
form, topics with an error or no id left out."""

from __future__ import annotations

import uuid
from io import BytesIO

import pytest

from app.topic_identity import _MetadataResponseV10, format_topic_id, topic_ids_of

pytestmark = pytest.mark.unit


def test_a_topic_id_is_printed_as_kafka_prints_it() -> None:
    raw = uuid.UUID("e66da559-da91-4b4f-a8cf-9735ea9b5a24").bytes
    assert format_topic_id(raw) == "5m2lWdqRS0-oz5c16ptaJA"


def test_the_answer_gives_the_ids_of_the_topics_that_exist() -> None:
    known, absent = uuid.uuid4().bytes, bytes(16)
    partition = (0, 0, 1, 0, [1], [1], [], {})
    answer = _MetadataResponseV10(
        0,
        [(1, "localhost", 9092, None, {})],
        "cluster",
        1,
        [
            (0, "user-events", known, False, [partition], 0, {}),
            (3, "missing", absent, False, [], 0, {}),  # UNKNOWN_TOPIC_OR_PARTITION
            (0, "no-id", absent, False, [partition], 0, {}),
        ],
        0,
        {},
    ).encode()
    decoded = _MetadataResponseV10.decode(BytesIO(answer))
    assert topic_ids_of(decoded) == {"user-events": format_topic_id(known)}
