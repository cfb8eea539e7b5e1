"""A lazy ranking reads as the list of scored offers it stands for, and builds rows on demand."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.catalog import Catalogue
from app.core.catalog_records import Offer
from app.core.ranked import RankedOffers, ScoredOffer, offers_of
from app.core.scoring import PARTS, ScoringConfig, score_batch
from app.policy.config import default_policy
from app.policy.decision import decide
from app.policy.state import UserPolicyState

pytestmark = pytest.mark.unit

NAMES = ("affinity", "value")


def ranking(n: int = 4) -> RankedOffers:
    offers = [Offer(offer_id=f"o{i}", title=f"O{i}", channels=("web",)) for i in range(n)]
    affinity = [0.5 - i / 10 for i in range(n)]
    value = [0.1] * n
    scores = [a + v for a, v in zip(affinity, value, strict=True)]
    return RankedOffers(offers, scores, NAMES, [affinity, value])


def test_a_ranking_equals_the_rows_it_stands_for_and_builds_each_once() -> None:
    lazy = ranking()
    assert lazy.rows_built == 0
    assert lazy.offer_ids == ["o0", "o1", "o2", "o3"]
    assert lazy[1] == ScoredOffer(lazy.offers[1], 0.5, {"affinity": 0.4, "value": 0.1}, "")
    assert lazy.rows_built == 1
    assert lazy[1] is lazy[-3]
    assert [s.offer_id for s in lazy[:2]] == ["o0", "o1"]
    assert lazy.rows_built == 2
    assert lazy == list(lazy) and list(lazy) == lazy
    assert lazy != list(lazy)[:3]
    with pytest.raises(IndexError):
        lazy[4]


def test_offers_of_reads_a_lazy_ranking_without_building_rows() -> None:
    lazy = ranking()
    assert [o.offer_id for o in offers_of(lazy)] == lazy.offer_ids
    assert lazy.rows_built == 0
    assert [o.offer_id for o in offers_of(list(lazy))] == lazy.offer_ids


def test_the_policy_builds_rows_only_for_the_offers_it_sends() -> None:
    lazy = ranking(20)
    decision = decide(
        lazy, UserPolicyState(), None, 0, default_policy(), default_policy().consent_defaults,
        max_offers=3,
    )  # fmt: skip
    assert decision.sent and decision.offer_ids == ["o0", "o1", "o2"]
    assert lazy.rows_built == 3


def test_score_batch_drops_ineligible_offers_from_a_lazy_ranking() -> None:
    cat = Catalogue(dim=4)
    for i in range(6):
        vector = tuple(float(j == i % 4) for j in range(4))
        valid_until = 10 if i % 2 else None  # odd offers have expired at now=100
        cat.upsert_offer(
            Offer(offer_id=f"o{i}", title="t", channels=("web",), vector=vector,
                  valid_until=valid_until)
        )  # fmt: skip
    cfg = ScoringConfig(k=6)
    (row,) = score_batch(np.ones((1, 4), np.float32), 100, cat, cfg, reasons=False)
    assert isinstance(row, RankedOffers)
    assert sorted(row.offer_ids) == ["o0", "o2", "o4"]
    for scored in row:
        assert list(scored.parts) == list(PARTS)
        assert scored.score == pytest.approx(sum(scored.parts.values()))
