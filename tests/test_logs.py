"""JSON log lines carry the record's position fields."""

from __future__ import annotations

import json
import logging

import pytest

from agents.events import positions
from app.logs import JsonFormatter, logging_config
from app.pipeline.records import InboundRecord

pytestmark = pytest.mark.unit


def test_a_json_line_has_the_message_and_the_extra_fields() -> None:
    record = logging.makeLogRecord(
        {"name": "nbo", "levelname": "WARNING", "msg": "batch of %d failed", "args": (3,)}
    )
    record.__dict__.update({"topic": "user-events", "offsets": "0:5-7"})
    doc = json.loads(JsonFormatter().format(record))
    assert doc["message"] == "batch of 3 failed" and doc["level"] == "WARNING"
    assert doc["topic"] == "user-events" and doc["offsets"] == "0:5-7"
    assert doc["ts"].endswith("+00:00")


def test_positions_name_each_partitions_offset_range() -> None:
    records = [InboundRecord("t", p, o, None, None) for p, o in [(1, 9), (0, 5), (1, 7), (0, 6)]]
    assert positions(records) == {"topic": "t", "offsets": "0:5-6,1:7-9"}


def test_text_logs_need_no_config() -> None:
    assert logging_config("text") is None
    assert logging_config("json", "WARNING")["root"]["level"] == "WARNING"  # type: ignore[index]
