from __future__ import annotations

import pytest

from app.core.dead_letters import dead_letter_headers

pytestmark = pytest.mark.unit


def test_headers_have_the_exact_names_and_values() -> None:
    headers = dead_letter_headers(
        "SchemaViolation", "user_id: bad", "nbo.events", 3, 1234, 1_714_564_800_007
    )
    assert headers == [
        ("nbo.error.class", b"SchemaViolation"),
        ("nbo.error.message", b"user_id: bad"),
        ("nbo.original.topic", b"nbo.events"),
        ("nbo.original.partition", b"3"),
        ("nbo.original.offset", b"1234"),
        ("nbo.failed_at", b"2024-05-01T12:00:00.007Z"),
    ]


def test_message_is_truncated_to_1000_characters_then_utf8_encoded() -> None:
    headers = dict(dead_letter_headers("X", "\u00e9" * 1500, "t", 0, 0, 0))
    message = headers["nbo.error.message"].decode("utf-8")
    assert message == "\u00e9" * 1000
    assert len(headers["nbo.error.message"]) == 2000


def test_unencodable_text_is_replaced_not_raised() -> None:
    headers = dict(dead_letter_headers("X", "bad \ud800 surrogate", "t", 0, 0, 0))
    assert headers["nbo.error.message"] == b"bad ? surrogate"
