"""The simulator drives the workers' pipeline on a tiny log whose answer is known.

One user who consented to push only, and nothing but 5 push decision requests 10 minutes
apart from noon UTC (outside quiet hours): a push cap of 1 an hour sends 1 and suppresses 4
by ``cap``; a cap of 3 an hour sends 3 and suppresses 2.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from typing import Any

import pytest

from app.core.catalog_records import Item, Offer
from app.pipeline.config import PipelineConfig
from app.policy.config import parse_policy
from app.policy.consent import ConsentRecord
from app.simulation import replay
from app.simulation.replay import SimulationError, simulate

pytestmark = pytest.mark.unit

NOON = 1_700_049_600_000  # Wed 2023-11-15 12:00 UTC
MINUTE = 60_000
ITEMS = [Item(item_id=f"i{i}", tags=(t,)) for i, t in enumerate(["space", "drama", "cars"])]
OFFERS = [
    Offer(offer_id=f"o{i}", title=f"Offer {i}", item_ids=(f"i{i}",), tags=(t,), value=10.0,
          channels=("push",))
    for i, t in enumerate(["space", "drama", "cars"])
]  # fmt: skip
BASE = PipelineConfig(
    exploration=PipelineConfig().exploration.model_copy(update={"weight": 0}),
    holdout_share=0.0,
    ann=None,
)


def policy_with_push_cap(per_hour: int) -> PipelineConfig:
    text = f"""
version = "push-{per_hour}"
[caps.channels]
push = [{{ max = {per_hour}, window = "1h" }}]
[consent_defaults]
push = false
"""
    return dataclasses.replace(BASE, policy=parse_policy(text))


def event(n: int, user: str = "u1", **body: Any) -> bytes:
    doc = {"event_id": f"{user}-e{n}", "user_id": user, "ts": NOON + n * 10 * MINUTE, **body}
    return json.dumps(doc).encode()


def push_requests(user: str = "u1") -> list[bytes]:
    return [event(n, user, type="decision_request", channel="push") for n in range(1, 6)]


def consent(*users: str) -> list[ConsentRecord]:
    return [
        ConsentRecord.model_validate(
            {"user_id": u, "channels": {"push": True, "in_app": False, "web": False}, "ts": NOON}
        )
        for u in users
    ]


def test_a_tighter_push_cap_sends_fewer_messages_and_suppresses_the_rest_by_cap() -> None:
    report = simulate(
        push_requests(), ITEMS, OFFERS, policy_with_push_cap(3), policy_with_push_cap(1),
        consent=consent("u1"), warmup_ms=0, batch_size=1,
    )  # fmt: skip
    now, tight = report.current, report.candidate
    assert (now.messages, tight.messages) == (3, 1)
    assert now.messages_by_channel == {"push": 3}
    assert (now.suppressions.get("cap"), tight.suppressions.get("cap")) == (2, 4)
    assert (now.cap_suppressions, tight.cap_suppressions) == (2, 4)
    assert report.difference["messages"] == -2
    assert (now.users, now.users_reached, tight.reach_share) == (1, 1, 1.0)
    assert now.per_day_by_channel == {"push": 3.0}  # under a day: plain counts


def test_the_most_changed_user_shows_both_decisions_of_the_first_trigger_that_differs() -> None:
    report = simulate(
        push_requests("u1") + push_requests("u2")[:3], ITEMS, OFFERS,
        policy_with_push_cap(3), policy_with_push_cap(1),
        consent=consent("u1", "u2"), warmup_ms=0, batch_size=1,
    )  # fmt: skip
    first = report.changes[0]
    assert (first.user_id, first.changed) == ("u1", 2)
    assert first.current is not None and first.current.sent
    assert first.candidate is not None and first.candidate.reason == "cap"
    assert first.trigger == ("u1-e2", "decision_request")
    assert [c.user_id for c in report.changes] == ["u1", "u2"]
    written = json.loads(json.dumps(report.to_dict()))
    assert written["changed_users"][0]["candidate"]["reason"] == "cap"
    assert "u1: 2 triggers differ" in report.render()


def test_the_warm_up_is_replayed_but_not_counted() -> None:
    report = simulate(
        push_requests(), ITEMS, OFFERS, policy_with_push_cap(3), policy_with_push_cap(3),
        consent=consent("u1"), warmup_ms=15 * MINUTE, batch_size=1,
    )  # fmt: skip
    # counted from 25 minutes: 10 and 20 were sent in the warm-up, 30 fits the cap, 40 and 50 not
    assert report.current.messages == 1
    assert report.current.cap_suppressions == 2
    assert report.counted_events == 3


def test_the_same_seed_gives_the_same_report_and_sampling_is_by_user() -> None:
    log = [raw for u in ("u1", "u2", "u3", "u4") for raw in push_requests(u)]
    exploring = dataclasses.replace(
        policy_with_push_cap(2), exploration=BASE.exploration.model_copy(update={"weight": 0.3})
    )
    people = consent("u1", "u2", "u3", "u4")

    def run(seed: int) -> dict[str, Any]:
        out = simulate(log, ITEMS, OFFERS, exploring, exploring, users=2, seed=seed,
                       consent=people, warmup_ms=0).to_dict()  # fmt: skip
        out.pop("seconds")
        return out

    once = run(7)
    assert once == run(7)
    assert once["users"] == 2 and once["events"] == 10


def test_the_simulator_takes_no_redis_or_kafka_and_publishes_nothing() -> None:
    names = set(inspect.signature(simulate).parameters)
    assert not {n for n in names if "redis" in n or "kafka" in n or "store" in n}
    source = inspect.getsource(replay)
    assert "import redis" not in source and "aiokafka" not in source


def test_no_events_is_a_clear_error() -> None:
    with pytest.raises(SimulationError, match="no events"):
        simulate([b"not json"], ITEMS, OFFERS, BASE, BASE)


def test_a_batch_ends_at_its_size_or_when_event_time_moves_past_its_span() -> None:
    raw = [event(n, type="view", item_id="i0") for n in (0, 0, 0, 1, 7)]
    events = [(replay.decode_event(r), r) for r in raw]
    sizes = [len(b) for b in replay.batches_of(events, size=2, span_ms=10 * MINUTE)]
    assert sizes == [2, 2, 1]
