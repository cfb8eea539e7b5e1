"""Whole fetches on the agent's side: gathering what is ready, settling, dropping stale ones."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from agents.fetches import (
    FetchedBatch,
    gather_fetches,
    is_current,
    release,
    settle,
    take,
    take_ready,
)

pytestmark = pytest.mark.agents


@dataclass(eq=False)
class Msg:
    offset: int
    topic: str = "user-events"
    partition: int = 0
    key: bytes = b"k"
    value: bytes = b"v"
    acked: bool = False


def fetch(*offsets: int, generation: int = 1) -> FetchedBatch:
    return FetchedBatch([Msg(o) for o in offsets], generation)


def queue_of(*items: Any) -> asyncio.Queue[Any]:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    return queue


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_records_keep_where_they_came_from() -> None:
    (record,) = FetchedBatch([Msg(7, partition=3, key=b"u", value=b"x")], 1).records()
    assert (record.topic, record.partition, record.offset, record.key, record.value) == (
        "user-events",
        3,
        7,
        b"u",
        b"x",
    )


def test_a_fetch_taken_by_the_agent_is_in_flight() -> None:
    consumer, batch = ConsumerStub(), fetch(0, 1)
    assert take(batch, consumer) is batch
    assert consumer._unacked_messages == set(batch.messages)


def test_take_ready_takes_the_fetches_that_fit_and_leaves_the_first_that_does_not() -> None:
    a, b, c = fetch(0, 1), fetch(2, 3), fetch(4)
    queue, consumer = queue_of(a, b, c), ConsumerStub()
    assert take_ready(queue, 3, consumer) == [a]  # a fetch is never split: b needs 2 of 1 left
    assert consumer._unacked_messages == set(a.messages)  # taken: in flight
    assert queue.get_nowait() is b


def test_take_ready_stops_at_an_item_that_is_not_a_fetch() -> None:
    a, other = fetch(0), object()
    queue = queue_of(a, other)
    assert take_ready(queue, 100, ConsumerStub()) == [a]
    assert queue.get_nowait() is other  # left for the stream to deliver as it is


async def test_gather_returns_at_once_when_the_batch_is_full() -> None:
    first, queued = fetch(0, 1, 2), fetch(3, 4)
    clock = FakeClock()
    consumer = ConsumerStub()
    gathered = await gather_fetches(first, queue_of(queued), consumer, 5, 10.0, clock)
    assert gathered == [first, queued]
    assert consumer._unacked_messages == {*first.messages, *queued.messages}


async def test_gather_returns_at_once_when_the_next_fetch_does_not_fit() -> None:
    first, big = fetch(0, 1, 2), fetch(3, 4, 5)
    queue = queue_of(big)
    gathered = await gather_fetches(first, queue, ConsumerStub(), 5, 10.0, FakeClock())
    assert gathered == [first]  # never more than 5 records; the next batch starts with big
    assert queue.get_nowait() is big


async def test_gather_lingers_for_more_records_but_not_past_its_deadline() -> None:
    first, late = fetch(0), fetch(1)
    queue = queue_of()
    loop = asyncio.get_running_loop()
    loop.call_later(0.02, queue.put_nowait, late)
    started = loop.time()
    gathered = await gather_fetches(first, queue, ConsumerStub(), max_records=10, within_s=0.2)
    assert gathered == [first, late]
    assert loop.time() - started >= 0.19  # still room: waited out the deadline


async def test_gather_with_nothing_else_coming_returns_the_first_fetch_alone() -> None:
    first = fetch(0)
    assert await gather_fetches(first, queue_of(), ConsumerStub(), 10, 0.01) == [first]


@dataclass
class Flow:
    active: bool = True

    def is_active(self) -> bool:
        return self.active


@dataclass
class AppStub:
    flow_control: Flow = field(default_factory=Flow)
    consumer_generation_id: int = 1


def test_only_a_fetch_of_the_current_generation_with_the_flow_on_is_current() -> None:
    app = AppStub()
    assert is_current(fetch(0, generation=1), app)
    assert not is_current(fetch(0, generation=0), app)
    app.flow_control.active = False
    assert not is_current(fetch(0, generation=1), app)


class ConsumerStub:
    def __init__(self) -> None:
        self.acked: list[int] = []
        self._unacked_messages: set[Msg] = set()
        self._waiting_for_ack: asyncio.Future[None] | None = None

    def ack(self, message: Msg) -> bool:
        message.acked = True
        self._unacked_messages.discard(message)
        self.acked.append(message.offset)
        return True


def test_settle_acknowledges_every_record_of_every_fetch() -> None:
    consumer = ConsumerStub()
    batches = [fetch(0, 1), fetch(2)]
    consumer._unacked_messages = {m for b in batches for m in b.messages}
    settle(batches, consumer)
    assert consumer.acked == [0, 1, 2]
    assert not consumer._unacked_messages


async def test_release_drops_a_fetch_from_flight_unacknowledged_and_wakes_the_waiter() -> None:
    consumer = ConsumerStub()
    stale, other = fetch(0, 1), fetch(2)
    consumer._unacked_messages = {*stale.messages, *other.messages}
    consumer._waiting_for_ack = asyncio.get_running_loop().create_future()
    release(stale, consumer)
    assert consumer.acked == []
    assert consumer._unacked_messages == set(other.messages)
    assert consumer._waiting_for_ack.done()  # a rebalance's wait_empty looks again
