"""The replay evaluation on logs whose answers are known."""

from __future__ import annotations

import math
from typing import Any

import pytest

from app.core.catalog_records import Item, Offer
from app.core.enums import EventType
from app.core.events import UserEvent
from app.evaluation.config import EvaluationConfig
from app.evaluation.evaluate import evaluate
from app.evaluation.report import Report
from app.learning.ease import EaseConfig
from app.learning.interactions import InteractionLog
from app.learning.model import CollabConfig
from tests.support.planted import T0, chain_log, group_log

pytestmark = pytest.mark.unit

SEC = 1000
SMALL = CollabConfig(dim=4)


def _popularity_case() -> tuple[InteractionLog, list[Item]]:
    """Train: A x4, B x3, D x1, C never. Test: x likes B, then C."""
    rows = [("u1", "A"), ("u2", "A"), ("u3", "A"), ("u4", "A"), ("u1", "B"), ("u2", "B"),
            ("u3", "B"), ("u4", "D"), ("x", "B"), ("x", "C")]  # fmt: skip
    items = [Item(item_id=i, title=f"Item {i}", tags=(i.lower(),)) for i in "ABCD"]
    log = InteractionLog.from_columns(
        [u for u, _ in rows],
        [i for _, i in rows],
        [T0 + k * SEC for k in range(len(rows))],
        [EventType.LIKE] * len(rows),
        item_ids=[i.item_id for i in items],
    )
    return log, items


def _strip(doc: dict[str, Any]) -> dict[str, Any]:
    doc = dict(doc)
    doc.pop("seconds")
    doc.pop("train_seconds")
    doc["methods"] = {
        name: {k: v for k, v in m.items() if k != "seconds"} for name, m in doc["methods"].items()
    }
    return doc


def test_popularity_hit_rate_is_exactly_what_the_counts_say() -> None:
    log, items = _popularity_case()
    cfg = EvaluationConfig(k_max=3, collab=SMALL)
    report = evaluate(log, items, None, cfg)
    assert report.stats.n_train_events == 8
    assert report.stats.n_queries == 2
    pop = report.methods["popularity"]
    # query 1 (B): A ahead -> rank 1; query 2 (C, B seen): A, D ahead -> rank 2
    assert pop.hit_rate == {1: 0.0, 2: 0.5, 3: 1.0}
    assert pop.ndcg[2] == pytest.approx(1 / math.log2(3) / 2)
    assert pop.ndcg[3] == pytest.approx((1 / math.log2(3) + 1 / math.log2(4)) / 2)
    assert pop.users_with_hit == {1: 0.0, 2: 1.0, 3: 1.0}
    assert pop.coverage[1] == 0.25  # A both times
    assert pop.coverage[2] == 0.75  # A, B, D
    assert pop.hit_rate_cold[3] == 1.0  # C had no interaction before the split
    assert report.stats.n_returning_queries == 0  # x is new
    assert report.methods["batch_model"].hit_rate == pop.hit_rate  # x is unknown: popularity
    assert set(report.methods) == {
        "engine_tags", "engine_collab", "popularity", "random", "batch_model",
        "popularity_positive", "ease", "ease_recency", "item_knn",
    }  # fmt: skip


def test_repeat_positives_are_not_queries() -> None:
    log, items = _popularity_case()
    again = InteractionLog.from_columns(
        [log.user_ids[u] for u in log.user] + ["x"],
        [log.item_ids[i] for i in log.item] + ["B"],
        [*log.ts_ms.tolist(), T0 + 20 * SEC],
        [EventType.LIKE] * (len(log) + 1),
        item_ids=[i.item_id for i in items],
    )
    report = evaluate(again, items, None, EvaluationConfig(k_max=3, collab=SMALL))
    assert report.stats.skipped_repeat == 1


def test_an_offer_outside_its_window_is_never_a_hit() -> None:
    log, items = _popularity_case()
    offers = [
        Offer(
            offer_id=f"o-{i.item_id}",
            title=i.item_id,
            item_ids=(i.item_id,),
            channels=("web",),
            valid_until=T0 + 5 * SEC if i.item_id == "B" else None,
        )
        for i in items
    ]
    report = evaluate(log, items, offers, EvaluationConfig(k_max=3, collab=SMALL))
    for result in report.methods.values():
        assert result.hit_rate[3] <= 0.5  # the B query (offer expired) can never hit
    assert report.methods["popularity"].hit_rate[3] == 0.5  # C: after A, D


def test_user_events_work_like_a_prepared_log() -> None:
    log, items = _popularity_case()
    events = [
        UserEvent(
            event_id=log.event_ids[k],
            user_id=log.user_ids[int(log.user[k])],
            type=EventType.LIKE,
            item_id=log.item_ids[int(log.item[k])],
            ts=int(log.ts_ms[k]),
        )
        for k in range(len(log))
    ]
    cfg = EvaluationConfig(k_max=3, collab=SMALL)
    a = _strip(evaluate(events, items, items, cfg).to_dict())
    b = _strip(evaluate(log, items, None, cfg).to_dict())
    assert a == b


def test_planted_groups_engine_collab_beats_random_by_far() -> None:
    planted = group_log(n_groups=3, users_per_group=20, items_per_group=12, per_user=10)
    collab = CollabConfig(dim=3).model_copy(
        update={"hybrid": CollabConfig().hybrid.model_copy(update={"w_cooccurrence": 0.0})}
    )
    cfg = EvaluationConfig(k_max=5, collab=collab, methods=("engine_collab", "random"))
    report = evaluate(planted.log, planted.items, None, cfg)
    assert report.stats.n_queries > 50
    collab_hr = report.methods["engine_collab"].hit_rate[5]
    assert collab_hr > 0.9
    assert collab_hr > 4 * report.methods["random"].hit_rate[5]


def test_chains_engine_collab_predicts_the_next_step() -> None:
    planted = chain_log(n_chains=4, chain_length=10, n_users=60)
    cfg = EvaluationConfig(k_max=5, collab=SMALL)
    report = evaluate(planted.log, planted.items, None, cfg)
    collab = report.methods["engine_collab"]
    assert collab.hit_rate[1] > 0.8
    assert collab.hit_rate[1] > 5 * report.methods["random"].hit_rate[5]
    assert collab.hit_rate[5] > report.methods["popularity"].hit_rate[5]


@pytest.mark.parametrize("neighbours", ["ease", "cooccurrence", "both"])
def test_chains_engine_collab_predicts_the_next_step_with_each_neighbour_index(
    neighbours: str,
) -> None:
    planted = chain_log(n_chains=4, chain_length=10, n_users=60)
    collab = SMALL.model_copy(update={"neighbours": neighbours, "ease": EaseConfig(lam=1.0)})
    cfg = EvaluationConfig(k_max=5, collab=collab, methods=("engine_collab", "popularity"))
    report = evaluate(planted.log, planted.items, None, cfg)
    assert report.methods["engine_collab"].hit_rate[1] > 0.8


def test_same_seed_same_report_and_json_keys() -> None:
    planted = group_log(seed=2)
    cfg = EvaluationConfig(k_max=20, collab=SMALL, seed=5, batch_size=7)
    a = evaluate(planted.log, planted.items, None, cfg)
    b = evaluate(planted.log, planted.items, None, cfg)
    assert _strip(a.to_dict()) == _strip(b.to_dict())
    doc = a.to_dict()
    for result in doc["methods"].values():
        assert list(result["hit_rate"]) == [str(k) for k in range(1, 21)]
        assert set(result) >= {"hit_rate", "ndcg", "coverage", "users_with_hit"}
    assert isinstance(a, Report)
    assert "engine_collab" in a.table()


def test_unknown_methods_are_rejected() -> None:
    log, items = _popularity_case()
    with pytest.raises(ValueError, match="unknown methods"):
        evaluate(log, items, None, EvaluationConfig(methods=("oracle",)))


def _new_chain_after_the_split() -> tuple[InteractionLog, list[Item]]:
    """Before the split users walk chains 0 and 1; after it, chain 2, which nobody walked
    before (every step a cold item to a model frozen at the split); one walk after the other,
    a minute a step."""
    items = [
        Item(item_id=f"c{c}-s{s:02d}", title=f"Step {s} of chain {c}", tags=("film",))
        for c in range(3)
        for s in range(8)
    ]
    users: list[str] = []
    steps: list[str] = []
    for phase, chains in ((0, (0, 1)), (1, (2,))):
        for u in range(24):  # one walk after the other
            for s in range(8):
                users.append(f"p{phase}-u{u:02d}")
                steps.append(f"c{chains[u % len(chains)]}-s{s:02d}")
    log = InteractionLog.from_columns(
        users,
        steps,
        [T0 + k * SEC * 60 for k in range(len(users))],
        [EventType.LIKE] * len(users),
        item_ids=[i.item_id for i in items],
    )
    return log, items


def test_retraining_during_the_test_period_learns_what_came_after_the_split() -> None:
    log, items = _new_chain_after_the_split()
    base = EvaluationConfig(k_max=5, collab=SMALL, split_quantile=0.5,
                            methods=("engine_collab", "ease"))  # fmt: skip
    base = base.model_copy(update={"match": base.match.model_copy(update={"enabled": False})})
    frozen = evaluate(log, items, None, base)
    hourly = evaluate(log, items, None, base.model_copy(update={"retrain_every_days": 1 / 24}))
    assert frozen.stats.retrains == 0 and hourly.stats.retrains >= 2
    assert frozen.stats.n_cold_queries == frozen.stats.n_queries > 100  # all on chain 2
    for method in ("engine_collab", "ease"):  # the walks of the first hour teach both
        before = frozen.methods[method].hit_rate[1]
        after = hourly.methods[method].hit_rate[1]
        assert after > before + 0.3, (method, before, after)
