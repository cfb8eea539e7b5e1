"""The batch-delivery consumer: the same delivery rules as faust's loop, one task per batch."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from faust.transport.consumer import Consumer as FaustConsumer

from agents.batch_delivery import (
    ORIGINAL_DRAIN_SHA256,
    App,
    BatchDeliveryConsumer,
    BatchDeliveryTransport,
    FetchTuning,
    TunedConsumerThread,
    deliver,
    deliver_batch,
    deliver_whole,
)
from agents.fetches import FetchedBatch

pytestmark = pytest.mark.agents


@dataclass
class Message:
    topic: str
    offset: int


@dataclass
class Topics:
    acked: bool = True

    def acks_enabled_for(self, topic: str) -> bool:
        return self.acked


@dataclass
class AppStub:
    topics: Topics = field(default_factory=Topics)
    consumer_generation_id: int = 1


class ConsumerStub:
    """The attributes of faust's consumer that :func:`deliver_batch` uses."""

    def __init__(self, commit_every: int | None = None) -> None:
        self.app = AppStub()
        self.flow_active = True
        self._read_offset: defaultdict[str, int | None] = defaultdict(lambda: None)
        self._commit_every = commit_every
        self._n_acked = 0
        self.delivered: list[tuple[str, int]] = []
        self.gaps: list[tuple[str, int, int]] = []
        self.commits = 0
        self.on_deliver: Any = None

    async def callback(self, message: Message) -> None:
        self.delivered.append((message.topic, message.offset))
        self._n_acked += 1
        if self.on_deliver is not None:
            self.on_deliver(self, message)

    async def _add_gap(self, tp: str, start: int, end: int) -> None:
        self.gaps.append((tp, start, end))

    async def commit(self) -> None:
        self.commits += 1


def batch(*offsets: tuple[str, int]) -> list[tuple[str, Message]]:
    return [(tp, Message(topic="t", offset=offset)) for tp, offset in offsets]


async def test_delivers_the_batch_in_order_and_marks_each_record_read() -> None:
    consumer = ConsumerStub()
    done = await deliver_batch(consumer, batch(("p0", 0), ("p1", 5), ("p0", 1)), generation=1)
    assert done == 3
    assert consumer.delivered == [("t", 0), ("t", 5), ("t", 1)]
    assert dict(consumer._read_offset) == {"p0": 1, "p1": 5}


async def test_records_below_the_read_offset_are_not_delivered_again() -> None:
    consumer = ConsumerStub()
    consumer._read_offset["p0"] = 4
    done = await deliver_batch(consumer, batch(("p0", 3), ("p0", 4), ("p0", 5)), generation=1)
    assert done == 2
    assert consumer.delivered == [("t", 4), ("t", 5)]


async def test_an_offset_gap_is_registered_for_acknowledgement() -> None:
    consumer = ConsumerStub()
    consumer._read_offset["p0"] = 2
    await deliver_batch(consumer, batch(("p0", 6)), generation=1)
    assert consumer.gaps == [("p0", 3, 6)]


async def test_no_gap_is_registered_when_acks_are_off_for_the_topic() -> None:
    consumer = ConsumerStub()
    consumer.app.topics.acked = False
    consumer._read_offset["p0"] = 2
    await deliver_batch(consumer, batch(("p0", 6)), generation=1)
    assert consumer.gaps == []


async def test_commits_after_every_commit_every_acks() -> None:
    consumer = ConsumerStub(commit_every=2)
    await deliver_batch(consumer, batch(*(("p0", i) for i in range(5))), generation=1)
    assert consumer.commits == 2  # before the 3rd and the 5th record


async def test_a_stopped_flow_stops_delivery_and_leaves_the_rest_unread() -> None:
    consumer = ConsumerStub()

    def stop_after_second(c: ConsumerStub, message: Message) -> None:
        if message.offset == 1:
            c.flow_active = False

    consumer.on_deliver = stop_after_second
    done = await deliver_batch(consumer, batch(*(("p0", i) for i in range(4))), generation=1)
    assert done == 2
    assert consumer._read_offset["p0"] == 1  # offsets 2 and 3 are fetched again after the seek


async def test_a_new_consumer_generation_stops_delivery() -> None:
    consumer = ConsumerStub()

    def rebalance(c: ConsumerStub, message: Message) -> None:
        c.app.consumer_generation_id = 2

    consumer.on_deliver = rebalance
    done = await deliver_batch(consumer, batch(("p0", 0), ("p0", 1)), generation=1)
    assert done == 1


def test_the_replaced_loop_is_the_one_this_was_written_against() -> None:
    source = inspect.getsource(FaustConsumer._drain_messages)
    assert hashlib.sha256(source.encode()).hexdigest() == ORIGINAL_DRAIN_SHA256, (
        "faust's Consumer._drain_messages changed: review agents/batch_delivery.py against it"
    )


def test_a_kafka_app_consumes_with_batch_delivery() -> None:
    app = App("nbo-test-batch-delivery", broker="kafka://127.0.0.1:1")
    assert isinstance(app.transport, BatchDeliveryTransport)
    assert app.transport.Consumer is BatchDeliveryConsumer


def test_the_data_directory_is_not_in_the_working_directory() -> None:
    app = App("nbo-test-datadir", broker="kafka://127.0.0.1:1")
    assert Path(app.conf.datadir).name == "nbo-faust-nbo-test-datadir"
    assert Path(app.conf.datadir).parent.is_dir()  # faust creates only the last level
    assert not Path(app.conf.datadir).is_relative_to(Path.cwd())


# --- whole fetches -------------------------------------------------------------------------------


@dataclass(eq=False)
class TpMessage:
    tp: str
    offset: int
    topic: str = "t"


class Channel:
    def __init__(self, maxsize: int = 0) -> None:
        self.queue: asyncio.Queue[FetchedBatch] = asyncio.Queue(maxsize)


class Buffer:
    async def wait_until_ebb(self) -> None:
        return None


@dataclass
class Producer:
    buffer: Buffer = field(default_factory=Buffer)


class WholeConsumerStub(ConsumerStub):
    """:class:`ConsumerStub` plus what :func:`deliver_whole` uses: the conductor's index of
    subscribing channels, the producer's buffer, the set of messages in flight."""

    def __init__(self, channels: dict[str, set[Channel]], commit_every: int | None = None) -> None:
        super().__init__(commit_every)
        self.app.topics._tp_index = channels  # type: ignore[attr-defined]
        self.app.producer = Producer()  # type: ignore[attr-defined]
        self.app.whole_fetch_topics = {"t"}  # type: ignore[attr-defined]
        self._unacked_messages: set[TpMessage] = set()


def fetched(*offsets: tuple[str, int], topic: str = "t") -> list[tuple[str, TpMessage]]:
    return [(tp, TpMessage(tp, offset, topic)) for tp, offset in offsets]


async def test_a_fetch_becomes_one_queued_batch_marked_read_and_not_yet_in_flight() -> None:
    channel = Channel()
    consumer = WholeConsumerStub({"p0": {channel}, "p1": {channel}})
    consumer.app.consumer_generation_id = 7
    records = fetched(("p0", 0), ("p1", 5), ("p0", 1))
    done = await deliver_whole(consumer, records, generation=7)
    assert done == 3
    batch = channel.queue.get_nowait()
    assert channel.queue.empty()
    assert batch.messages == [m for _, m in records] and batch.generation == 7
    assert consumer._unacked_messages == set()  # in flight only once the agent takes it
    assert dict(consumer._read_offset) == {"p0": 1, "p1": 5}
    assert consumer.delivered == []  # no record went through the per-record callback


async def test_whole_delivery_skips_records_already_read_and_registers_gaps() -> None:
    channel = Channel()
    consumer = WholeConsumerStub({"p0": {channel}})
    consumer._read_offset["p0"] = 2
    await deliver_whole(consumer, fetched(("p0", 1), ("p0", 2), ("p0", 3), ("p0", 6)), 1)
    batch = channel.queue.get_nowait()
    assert [m.offset for m in batch.messages] == [2, 3, 6]
    assert consumer.gaps == [("p0", 4, 6)]  # 3 -> 6 within the fetch, not 2 -> 3


async def test_a_put_interrupted_while_the_queue_is_full_leaves_the_records_unread() -> None:
    channel = Channel(maxsize=1)
    consumer = WholeConsumerStub({"p0": {channel}})
    await deliver_whole(consumer, fetched(("p0", 0)), 1)
    blocked = asyncio.ensure_future(deliver_whole(consumer, fetched(("p0", 1), ("p0", 2)), 1))
    await asyncio.sleep(0.01)
    assert not blocked.done()  # waits for room, as faust's delivery does
    blocked.cancel()  # a rebalance suspends the flow
    with pytest.raises(asyncio.CancelledError):
        await blocked
    assert consumer._read_offset["p0"] == 0  # 1 and 2 are fetched again after the seek
    assert [m.offset for m in channel.queue.get_nowait().messages] == [0]


async def test_whole_delivery_stops_when_the_flow_stops_or_the_generation_changed() -> None:
    channel = Channel()
    consumer = WholeConsumerStub({"p0": {channel}})
    consumer.app.consumer_generation_id = 2
    assert await deliver_whole(consumer, fetched(("p0", 0)), generation=1) == 0
    consumer.app.consumer_generation_id = 1
    consumer.flow_active = False
    assert await deliver_whole(consumer, fetched(("p0", 0)), generation=1) == 0
    assert channel.queue.empty() and consumer._read_offset["p0"] is None


async def test_a_partition_without_exactly_one_subscriber_is_delivered_record_by_record() -> None:
    first, second = Channel(), Channel()
    consumer = WholeConsumerStub({"p0": {first}, "p1": {first, second}})
    done = await deliver_whole(consumer, fetched(("p0", 0), ("p1", 0), ("p1", 1)), 1)
    assert done == 3
    assert [m.offset for m in first.queue.get_nowait().messages] == [0]
    assert consumer.delivered == [("t", 0), ("t", 1)]


async def test_other_topics_of_a_fetch_go_record_by_record_and_the_marked_topic_whole() -> None:
    channel = Channel()
    consumer = WholeConsumerStub({"p0": {channel}})
    mixed = fetched(("p0", 0), ("p0", 1)) + fetched(("c0", 4), topic="consent")
    done = await deliver(consumer, mixed, 1)
    assert done == 3
    assert consumer.delivered == [("consent", 4)]
    assert [m.offset for m in channel.queue.get_nowait().messages] == [0, 1]


def test_a_topic_delivered_whole_has_a_bounded_queue_of_batches() -> None:
    app = App("nbo-test-whole", broker="kafka://127.0.0.1:1")
    topic = app.topic("events-x")
    app.deliver_whole_fetches(topic, max_batches=3)
    assert app.whole_fetch_topics == {"events-x"}
    assert topic.queue.maxsize == 3


async def test_the_apps_fetch_tuning_reaches_the_kafka_consumer() -> None:
    app = App("nbo-test-fetch-tuning", broker="kafka://127.0.0.1:1")
    app.fetch_tuning = FetchTuning(min_bytes=32_768, max_wait_ms=40)
    thread = app.consumer._thread
    assert isinstance(thread, TunedConsumerThread)
    consumer = thread._create_worker_consumer(app.transport)  # not started: no network
    assert (consumer._fetch_min_bytes, consumer._fetch_max_wait_ms) == (32_768, 40)


async def test_without_fetch_tuning_the_consumer_keeps_faust_s_fetch_settings() -> None:
    app = App("nbo-test-no-fetch-tuning", broker="kafka://127.0.0.1:1")
    consumer = app.consumer._thread._create_worker_consumer(app.transport)
    assert (consumer._fetch_min_bytes, consumer._fetch_max_wait_ms) == (1, 1500)
