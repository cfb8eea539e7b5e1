"""``nbo embed --from-topic`` learns from the events topic of a real broker, and ends.

Planted structure: users of group g like items of group g only, so a learned item's nearest
neighbours are of its own group. The events go to a topic of three partitions, the catalogue to
an item-catalog topic; the command runs as the CronJob runs it (settings from ``NBO_*``).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from app.cli import main
from app.commands.topic_source import read_topics_to_end
from app.core.catalog_records import Item, decode_item
from app.core.cooccurrence.index import CooccurrenceIndex
from tests.conftest import NewTopicFactory
from tests.support.kafka_io import as_json, produce
from tests.support.planted import Planted, group_log

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000


def event_records(planted: Planted, ts_shift_ms: int = 0) -> list[tuple[bytes, bytes]]:
    """The planted log as UserEvent records keyed by user (event time shifted by the shift)."""
    log = planted.log
    records = []
    for k in range(len(log)):
        user = log.user_ids[int(log.user[k])]
        doc = {
            "event_id": f"{log.event_ids[k]}-{ts_shift_ms}",
            "user_id": user,
            "type": "like",
            "item_id": log.item_ids[int(log.item[k])],
            "ts": int(log.ts_ms[k]) + ts_shift_ms,
        }
        records.append((user.encode(), as_json(doc)))
    return records


def item_records(items: list[Item]) -> list[tuple[bytes, bytes]]:
    return [(i.item_id.encode(), i.model_dump_json().encode()) for i in items]


def learned_items(path: Path) -> dict[str, Item]:
    return {i.item_id: i for i in map(decode_item, path.read_bytes().splitlines())}


@pytest.fixture
def topics_env(kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], None]:
    """Point ``nbo`` at the test's broker and topics (as the ConfigMap does in Kubernetes)."""

    def point(events_topic: str, items_topic: str) -> None:
        monkeypatch.setenv("NBO_KAFKA_BOOTSTRAP", kafka_bootstrap)
        monkeypatch.setenv("NBO_TOPIC_USER_EVENTS", events_topic)
        monkeypatch.setenv("NBO_TOPIC_ITEM_CATALOG", items_topic)

    return point


async def test_embed_from_topic_learns_the_items_of_the_events_topic_with_the_topic_catalogue(
    kafka_bootstrap: str,
    new_topic: NewTopicFactory,
    topics_env: Callable[[str, str], None],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    planted = group_log(n_groups=2, users_per_group=10, items_per_group=8, per_user=6)
    events_topic = await new_topic("events", partitions=3)
    items_topic = await new_topic("items", partitions=2, config={"cleanup.policy": "compact"})
    await produce(kafka_bootstrap, events_topic, event_records(planted))
    await produce(kafka_bootstrap, events_topic, [(b"x", b"not json")])
    # g1-i00 is deleted from the catalogue (tombstone): it comes back from its events' tags only
    await produce(kafka_bootstrap, items_topic, [*item_records(planted.items), (b"g1-i00", None)])
    topics_env(events_topic, items_topic)
    out, neighbours = tmp_path / "items.jsonl", tmp_path / "neighbours.jsonl"

    argv = ["embed", "--from-topic", "--output", str(out), "--neighbours", str(neighbours)]
    code = await asyncio.wait_for(asyncio.to_thread(main, argv), timeout=90)

    assert code == 0
    printed = capsys.readouterr().out
    assert f"from {len(planted.log)} events" in printed
    assert "skipped 1 undecodable events" in printed
    items = learned_items(out)
    assert set(items) == {i.item_id for i in planted.items}
    assert all(i.vector is not None and len(i.vector) == 64 for i in items.values())
    assert items["g0-i00"].title == "Item 0 of group 0"  # from the item-catalog topic
    assert items["g1-i00"].title is None
    index = CooccurrenceIndex.from_records(
        [json.loads(line) for line in neighbours.read_text().splitlines()]
    )
    assert all(n.startswith("g0-") for n, _ in index.neighbours_of("g0-i00"))


async def test_embed_since_days_learns_only_from_events_of_recent_event_time(
    kafka_bootstrap: str,
    new_topic: NewTopicFactory,
    topics_env: Callable[[str, str], None],
    tmp_path: Path,
) -> None:
    # group 0 liked its items until a day ago; group 1 its items in 2023 (produced just now)
    planted = group_log(n_groups=2, users_per_group=10, items_per_group=8, per_user=6)
    shift = int(time.time() * 1000) - DAY_MS - int(planted.log.ts_ms.max())
    recent = [r for r in event_records(planted, shift) if b'"item_id": "g0-' in r[1]]
    old = [r for r in event_records(planted) if b'"item_id": "g1-' in r[1]]
    assert recent and old
    events_topic = await new_topic("events", partitions=2)
    items_topic = await new_topic("items")
    await produce(kafka_bootstrap, events_topic, recent + old)
    await produce(kafka_bootstrap, items_topic, item_records(planted.items))
    topics_env(events_topic, items_topic)
    out = tmp_path / "items.jsonl"

    argv = ["embed", "--from-topic", "--since-days", "30", "--output", str(out)]
    code = await asyncio.wait_for(asyncio.to_thread(main, argv), timeout=90)

    assert code == 0
    assert set(learned_items(out)) == {i.item_id for i in planted.items if i.item_id < "g1"}


async def test_the_topics_are_read_up_to_their_end_at_start_even_while_producers_write(
    kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    topic = await new_topic("events")
    await produce(kafka_bootstrap, topic, [(None, f"{n}".encode()) for n in range(100)])
    seen: list[bytes | None] = []

    def on_record(_topic: str, _key: bytes | None, value: bytes | None) -> None:
        if not seen:  # 50 more records land while the read is under way
            more = [(None, f"late-{n}".encode()) for n in range(50)]
            writer = threading.Thread(
                target=lambda: asyncio.run(produce(kafka_bootstrap, topic, more))
            )
            writer.start()
            writer.join()
        seen.append(value)

    read = await asyncio.wait_for(
        read_topics_to_end({"bootstrap_servers": kafka_bootstrap}, [topic], on_record), 60
    )

    assert read == 100
    assert seen == [f"{n}".encode() for n in range(100)]


async def test_embed_from_a_topic_that_does_not_exist_says_so(
    new_topic: NewTopicFactory,
    topics_env: Callable[[str, str], None],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    unique: Callable[[str], str],
) -> None:
    items_topic = await new_topic("items")
    missing = unique("no-such-events")
    topics_env(missing, items_topic)

    argv = ["embed", "--from-topic", "--output", str(tmp_path / "items.jsonl")]
    code = await asyncio.wait_for(asyncio.to_thread(main, argv), timeout=60)

    assert code == 2
    assert f"topic {missing!r} does not exist" in capsys.readouterr().err
