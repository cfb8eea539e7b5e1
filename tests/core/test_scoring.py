from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.catalog import Catalogue
from app.core.catalog_records import Item, Offer
from app.core.scoring import PARTS, ScoringConfig, ranking_changed, score_batch

pytestmark = pytest.mark.unit

DIM = 8
NOW = 1_000_000
CFG = ScoringConfig()


def onehot(i: int) -> tuple[float, ...]:
    return tuple(1.0 if j == i else 0.0 for j in range(DIM))


def user(*weights: float) -> np.ndarray:
    vec = np.zeros(DIM, dtype=np.float32)
    vec[: len(weights)] = weights
    return vec


def ids(row: list) -> list[str]:  # type: ignore[type-arg]
    return [s.offer_id for s in row]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Catalogue, np.ndarray, list[set[str]], int]:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_offers = draw(st.integers(1, 12))
    n_users = draw(st.integers(1, 6))
    k = draw(st.integers(1, 8))
    cat = Catalogue(dim=DIM)
    for i in range(n_offers):
        vec = rng.normal(size=DIM) if rng.random() < 0.85 else None
        valid_from = int(rng.integers(NOW - 10, NOW + 10)) if rng.random() < 0.3 else None
        cat.upsert_offer(
            Offer(
                offer_id=f"o{i:02d}",
                title=f"Offer {i}",
                item_ids=(f"i{i % 4}",),
                vector=tuple(vec.tolist()) if vec is not None else None,
                value=float(rng.uniform(0, 100)) if rng.random() < 0.8 else 0.0,
                priority=int(rng.integers(-3, 4)),
                channels=("email",) if rng.random() < 0.9 else (),
                valid_from=valid_from,
            )
        )
        cat.set_popularity(f"o{i:02d}", float(rng.random()))
    users = rng.normal(size=(n_users, DIM)).astype(np.float32)
    users[rng.random(n_users) < 0.25] = 0.0  # some cold users
    exclude = [{f"i{j}" for j in range(4) if rng.random() < 0.2} for _ in range(n_users)]
    return cat, users, exclude, k


def reference_scores(cat: Catalogue, user_vec: np.ndarray, purchased: set[str]) -> dict:  # type: ignore[type-arg]
    """Per-user, per-offer float64 reference of the scoring rule."""
    snap = cat.snapshot()
    norm = np.linalg.norm(user_vec.astype(np.float64))
    out = {}
    for i, offer in enumerate(snap.offers):
        start = offer.valid_from if offer.valid_from is not None else -math.inf
        end = offer.valid_until if offer.valid_until is not None else math.inf
        if not (start <= NOW < end) or not offer.channels or purchased & set(offer.item_ids):
            continue
        row = snap.matrix[i].astype(np.float64)
        cos = 0.0 if norm == 0 else float(row @ user_vec.astype(np.float64)) / norm
        out[offer.offer_id] = (
            CFG.w_affinity * cos
            + CFG.w_value * snap.value_norm[i]
            + CFG.w_popularity * snap.popularity[i]
            + CFG.w_priority * snap.priority_norm[i]
        )
    return out


@settings(deadline=None, max_examples=150)
@given(scenarios())
def test_batch_matmul_equals_a_per_user_reference_loop(
    scenario: tuple[Catalogue, np.ndarray, list[set[str]], int],
) -> None:
    cat, users, exclude, k = scenario
    cfg = CFG.model_copy(update={"k": k})
    results = score_batch(users, NOW, cat, cfg, exclude)
    assert len(results) == len(users)
    for u, row in enumerate(results):
        ref = reference_scores(cat, users[u], exclude[u])
        assert len(row) == min(k, len(ref))
        for scored in row:
            assert scored.score == pytest.approx(ref[scored.offer_id], abs=1e-5)
        best = sorted(ref.values(), reverse=True)[: len(row)]
        assert [s.score for s in row] == pytest.approx(best, abs=1e-5)
        assert all(a.score >= b.score for a, b in itertools.pairwise(row))


def window_catalogue() -> Catalogue:
    cat = Catalogue(dim=DIM)
    cat.upsert_offer(
        Offer(offer_id="w", title="t", channels=("email",), valid_from=100, valid_until=200)
    )
    return cat


@pytest.mark.parametrize(("now", "eligible"), [(99, False), (100, True), (199, True), (200, False)])
def test_validity_window_is_from_inclusive_until_exclusive(now: int, eligible: bool) -> None:
    [row] = score_batch(np.zeros((1, DIM)), now, window_catalogue(), CFG)
    assert ids(row) == (["w"] if eligible else [])


def test_offers_without_channels_are_never_returned() -> None:
    cat = Catalogue(dim=DIM)
    cat.upsert_offer(Offer(offer_id="silent", title="t", value=100, vector=onehot(0)))
    cat.upsert_offer(Offer(offer_id="ok", title="t", channels=("web",)))
    [row] = score_batch(user(1.0)[None, :], NOW, cat, CFG)
    assert ids(row) == ["ok"]


def test_offers_with_purchased_items_are_excluded_per_user() -> None:
    cat = Catalogue(dim=DIM)
    cat.upsert_offer(Offer(offer_id="a", title="t", item_ids=("x", "y"), channels=("sms",)))
    cat.upsert_offer(Offer(offer_id="b", title="t", item_ids=("z",), channels=("sms",)))
    rows = score_batch(np.zeros((3, DIM)), NOW, cat, CFG, [{"y"}, set(), {"x", "z"}])
    assert [sorted(ids(r)) for r in rows] == [["b"], ["a", "b"], []]


def test_top_k_is_ordered_best_first_and_has_k_entries() -> None:
    cat = Catalogue(dim=DIM)
    for i in range(DIM):
        cat.upsert_offer(Offer(offer_id=f"o{i}", title="t", vector=onehot(i), channels=("web",)))
    prefs = user(0.1, 0.9, 0.5, 0.3, 0.8, 0.2, 0.7, 0.05)
    [row] = score_batch(prefs[None, :], NOW, cat, CFG.model_copy(update={"k": 3}))
    assert ids(row) == ["o1", "o4", "o6"]
    [row] = score_batch(prefs[None, :], NOW, cat, ScoringConfig())
    assert len(row) == 5
    [row] = score_batch(prefs[None, :], NOW, cat, CFG.model_copy(update={"k": 50}))
    assert len(row) == DIM


def test_cold_user_gets_a_value_and_popularity_ranking() -> None:
    cat = Catalogue(dim=DIM)
    cat.upsert_offer(
        Offer(offer_id="cheap", title="t", value=1, vector=onehot(0), channels=("web",))
    )
    cat.upsert_offer(Offer(offer_id="rich", title="Gold", value=100, channels=("web",)))
    cat.upsert_offer(Offer(offer_id="hot", title="t", value=1, channels=("web",)))
    cat.set_popularity("hot", 0.5)
    [row] = score_batch(np.zeros((1, DIM)), NOW, cat, CFG)
    assert ids(row) == ["rich", "hot", "cheap"]
    assert all(s.parts["affinity"] == 0.0 for s in row)
    assert row[0].score == pytest.approx(CFG.w_value)
    assert [s.reason for s in row[:2]] == ["Great value: Gold", "Popular right now"]


def test_non_finite_user_vector_is_treated_as_cold() -> None:
    cat = Catalogue(dim=DIM)
    cat.upsert_offer(Offer(offer_id="a", title="t", vector=onehot(0), channels=("web",)))
    bad = user(float("nan"), 1.0)[None, :]
    [row] = score_batch(bad, NOW, cat, CFG)
    assert row[0].parts["affinity"] == 0.0


def test_score_parts_are_weighted_contributions_that_sum_to_the_score() -> None:
    cat = Catalogue(dim=DIM)
    cat.upsert_offer(
        Offer(offer_id="a", title="t", vector=onehot(0), value=50, priority=3, channels=("web",))
    )
    cat.upsert_offer(Offer(offer_id="b", title="t", value=100, priority=-6, channels=("web",)))
    cat.set_popularity("a", 0.4)
    [row] = score_batch(user(0.6, 0.8)[None, :], NOW, cat, CFG)
    a = {s.offer_id: s for s in row}["a"]
    assert set(a.parts) == set(PARTS)
    assert a.parts["affinity"] == pytest.approx(0.7 * 0.6, rel=1e-6)
    assert a.parts["value"] == pytest.approx(0.2 * 0.5)
    assert a.parts["popularity"] == pytest.approx(0.1 * 0.4)
    assert a.parts["priority"] == pytest.approx(0.05 * 0.5)
    for scored in row:
        assert math.fsum(scored.parts.values()) == pytest.approx(scored.score, abs=1e-12)


def test_empty_inputs() -> None:
    cat = Catalogue(dim=DIM)
    assert score_batch(np.zeros((2, DIM)), NOW, cat, CFG) == [[], []]
    assert score_batch(np.zeros((0, DIM)), NOW, cat, CFG) == []


def test_shape_mismatches_are_refused() -> None:
    cat = Catalogue(dim=DIM)
    with pytest.raises(ValueError):
        score_batch(np.zeros((1, DIM + 1)), NOW, cat, CFG)
    with pytest.raises(ValueError):
        score_batch(np.zeros(DIM), NOW, cat, CFG)
    with pytest.raises(ValueError):
        score_batch(np.zeros((2, DIM)), NOW, cat, CFG, [set()])


def test_config_defaults() -> None:
    cfg = ScoringConfig()
    assert (cfg.w_affinity, cfg.w_value, cfg.w_popularity, cfg.w_priority, cfg.k) == (
        0.7,
        0.2,
        0.1,
        0.05,
        5,
    )
    with pytest.raises(ValueError):
        ScoringConfig(k=0)


def test_ranking_changed_compares_ids_in_order() -> None:
    assert ranking_changed([], ["a"]) is True
    assert ranking_changed(["a", "b"], ["a", "b"]) is False
    assert ranking_changed(["a", "b"], ["b", "a"]) is True
    assert ranking_changed(["a", "b"], ["a"]) is True
    assert ranking_changed((), []) is False


def test_affinity_reason_names_the_shared_tags() -> None:
    cat = Catalogue(dim=DIM * 8)
    cat.upsert_item(Item(item_id="dune", tags=("sci-fi", "space", "desert")))
    cat.upsert_item(Item(item_id="love", tags=("romance",)))
    cat.upsert_offer(Offer(offer_id="o", title="t", item_ids=("dune",), channels=("web",)))
    cat.upsert_offer(Offer(offer_id="p", title="t", item_ids=("love",), channels=("web",)))
    prefs = cat.item_vector("dune")
    assert prefs is not None
    [row] = score_batch(prefs[None, :], NOW, cat, CFG)
    assert row[0].offer_id == "o"
    assert row[0].reason.startswith("Matches your interest in ")
    named = row[0].reason.removeprefix("Matches your interest in ").split(", ")
    assert len(named) == 2 and set(named) <= {"sci-fi", "space", "desert"}
    assert row[0].reason != row[1].reason


def test_reasons_built_later_equal_reasons_built_while_scoring() -> None:
    from app.core.catalog import Catalogue
    from app.core.catalog_records import Offer
    from app.core.scoring import ScoringConfig, score_batch, unit_user, with_reasons
    from app.core.vectors import hash_tags

    cat = Catalogue(dim=32)
    for i, tags in enumerate([("a", "b"), ("b", "c"), ("c", "d")]):
        cat.upsert_offer(
            Offer(offer_id=f"o{i}", title=f"T{i}", tags=tags, value=float(i), channels=("web",))
        )
    user = hash_tags(["b", "c"], 32)
    assert user is not None
    cfg = ScoringConfig(k=3)
    eager = score_batch(user.reshape(1, -1), 0, cat, cfg)[0]
    lazy = score_batch(user.reshape(1, -1), 0, cat, cfg, reasons=False)[0]
    assert all(s.reason == "" for s in lazy)
    later = with_reasons(unit_user(user), lazy, cat.snapshot(), cfg)
    assert [(s.offer_id, s.reason) for s in later] == [(s.offer_id, s.reason) for s in eager]
    assert all(s.reason for s in later)


def test_scoring_in_blocks_of_users_gives_the_same_rankings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import app.core.scoring as scoring

    cat = Catalogue(dim=DIM)
    for i in range(7):
        cat.upsert_offer(
            Offer(
                offer_id=f"o{i}",
                title="t",
                vector=onehot(i % DIM),
                value=float(i),
                item_ids=(f"i{i}",),
                channels=("web",),
            )
        )
    rng = np.random.default_rng(3)
    users = rng.normal(size=(10, DIM)).astype(np.float32)
    exclude = [{"i2"} if u % 3 == 0 else set() for u in range(10)]
    whole = score_batch(users, NOW, cat, CFG, exclude)
    monkeypatch.setattr(scoring, "MAX_SCORE_CELLS", 14)  # two users per block
    blocks = score_batch(users, NOW, cat, CFG, exclude)
    assert [[s.offer_id for s in row] for row in blocks] == [
        [s.offer_id for s in row] for row in whole
    ]
    assert all("o2" not in [s.offer_id for s in blocks[u]] for u in (0, 3, 6, 9))


def exploration_catalogue() -> Catalogue:
    cat = Catalogue(dim=DIM)
    cat.upsert_offer(Offer(offer_id="known", title="Known", value=100, channels=("web",)))
    cat.upsert_offer(Offer(offer_id="new", title="Fresh", value=90, channels=("web",)))
    return cat


def test_the_exploration_part_can_change_the_ranking_and_is_reported_in_the_parts() -> None:
    cat = exploration_catalogue()
    assert cat.snapshot().offer_ids == ("known", "new")
    [plain] = score_batch(np.zeros((1, DIM)), NOW, cat, CFG)
    assert ids(plain) == ["known", "new"]
    assert all(s.parts["exploration"] == 0.0 for s in plain)

    explore = np.array([-0.01, 0.05])
    [row] = score_batch(np.zeros((1, DIM)), NOW, cat, CFG, exploration=explore)
    assert ids(row) == ["new", "known"]
    parts = {s.offer_id: s.parts["exploration"] for s in row}
    assert parts == {"new": 0.05, "known": -0.01}
    for scored in row:
        assert set(scored.parts) == set(PARTS)
        assert math.fsum(scored.parts.values()) == pytest.approx(scored.score, abs=1e-12)


def test_an_offer_lifted_mostly_by_exploration_says_so_in_its_reason() -> None:
    cat = exploration_catalogue()
    [row] = score_batch(np.zeros((1, DIM)), NOW, cat, CFG, exploration=np.array([0.0, 0.19]))
    assert [s.reason for s in row] == ["Something different: Fresh", "Great value: Known"]


def test_exploration_never_makes_an_ineligible_offer_eligible() -> None:
    cat = exploration_catalogue()
    cat.upsert_offer(Offer(offer_id="mute", title="t", value=100))  # no channel
    snap_ids = cat.snapshot().offer_ids
    explore = np.array([1.0 if o == "mute" else 0.0 for o in snap_ids])
    [row] = score_batch(np.zeros((1, DIM)), NOW, cat, CFG, exploration=explore)
    assert "mute" not in ids(row)


@pytest.mark.parametrize("explore", [np.zeros(3), np.array([0.0, np.nan]), np.zeros((1, 2))])
def test_an_exploration_vector_not_aligned_with_the_catalogue_is_refused(
    explore: np.ndarray,
) -> None:
    with pytest.raises(ValueError):
        score_batch(np.zeros((1, DIM)), NOW, exploration_catalogue(), CFG, exploration=explore)


def test_exploration_is_the_same_when_scoring_in_blocks_of_users(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import app.core.scoring as scoring

    cat = Catalogue(dim=DIM)
    for i in range(7):
        cat.upsert_offer(
            Offer(offer_id=f"o{i}", title="t", vector=onehot(i), value=1.0, channels=("web",))
        )
    rng = np.random.default_rng(5)
    users = rng.normal(size=(10, DIM)).astype(np.float32)
    explore = rng.uniform(-0.3, 0.3, size=7)
    whole = score_batch(users, NOW, cat, CFG, exploration=explore)
    monkeypatch.setattr(scoring, "MAX_SCORE_CELLS", 14)  # two users per block
    blocks = score_batch(users, NOW, cat, CFG, exploration=explore)
    assert [[(s.offer_id, s.parts["exploration"]) for s in row] for row in blocks] == [
        [(s.offer_id, s.parts["exploration"]) for s in row] for row in whole
    ]


COOC = CFG.model_copy(update={"w_cooccurrence": 0.3})


def sparse(*pairs: tuple[int, float]) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([r for r, _ in pairs], dtype=np.intp), np.array([v for _, v in pairs]))


def test_the_cooccurrence_part_is_weighted_added_before_the_top_k_and_reported() -> None:
    cat = exploration_catalogue()  # known (value 100), new (value 90)
    [plain] = score_batch(np.zeros((1, DIM)), NOW, cat, COOC.model_copy(update={"k": 1}))
    assert ids(plain) == ["known"]

    part = [sparse((1, 0.5))]
    [row] = score_batch(np.zeros((1, DIM)), NOW, cat, COOC, cooccurrence=part)
    assert ids(row) == ["new", "known"]
    assert {s.offer_id: s.parts["cooccurrence"] for s in row} == {"new": 0.15, "known": 0.0}
    for scored in row:
        assert tuple(scored.parts) == (*PARTS, "cooccurrence")
        assert math.fsum(scored.parts.values()) == pytest.approx(scored.score, abs=1e-12)
    [top] = score_batch(
        np.zeros((1, DIM)), NOW, cat, COOC.model_copy(update={"k": 1}), cooccurrence=part
    )
    assert ids(top) == ["new"]  # added before the top K, not re-ranked after it


def test_without_a_cooccurrence_weight_the_part_is_neither_added_nor_reported() -> None:
    cat = exploration_catalogue()
    no_weight = CFG.model_copy(update={"w_cooccurrence": 0.0})
    [row] = score_batch(np.zeros((1, DIM)), NOW, cat, no_weight, cooccurrence=[sparse((1, 1.0))])
    assert ids(row) == ["known", "new"]
    assert all(tuple(s.parts) == PARTS for s in row)


def test_cooccurrence_never_makes_an_ineligible_or_purchased_offer_eligible() -> None:
    cat = exploration_catalogue()
    cat.upsert_offer(Offer(offer_id="mute", title="t", value=100))  # no channel
    cat.upsert_offer(Offer(offer_id="owned", title="t", item_ids=("x",), channels=("web",)))
    rows = {o: i for i, o in enumerate(cat.snapshot().offer_ids)}
    part = [sparse((rows["mute"], 1.0), (rows["owned"], 1.0))]
    [row] = score_batch(np.zeros((1, DIM)), NOW, cat, COOC, [{"x"}], cooccurrence=part)
    assert ids(row) == ["known", "new"]


def test_each_user_gets_only_their_own_cooccurrence_part_also_in_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import app.core.scoring as scoring

    cat = Catalogue(dim=DIM)
    for i in range(7):
        cat.upsert_offer(Offer(offer_id=f"o{i}", title="t", value=1.0, channels=("web",)))
    parts = [sparse((u % 7, 1.0), ((u + 3) % 7, 0.5)) for u in range(10)]
    cfg = COOC.model_copy(update={"k": 2})
    whole = score_batch(np.zeros((10, DIM)), NOW, cat, cfg, cooccurrence=parts)
    assert [ids(row) for row in whole] == [[f"o{u % 7}", f"o{(u + 3) % 7}"] for u in range(10)]
    monkeypatch.setattr(scoring, "MAX_SCORE_CELLS", 14)  # two users per block
    blocks = score_batch(np.zeros((10, DIM)), NOW, cat, cfg, cooccurrence=parts)
    assert [[(s.offer_id, s.score, s.parts["cooccurrence"]) for s in row] for row in blocks] == [
        [(s.offer_id, s.score, s.parts["cooccurrence"]) for s in row] for row in whole
    ]


@pytest.mark.parametrize(
    "part",
    [
        [],  # one entry per user is required
        [sparse((2, 1.0))],  # no such offer row
        [sparse((-1, 1.0))],
        [sparse((0, float("nan")))],
        [(np.array([0, 1]), np.array([1.0]))],
    ],
)
def test_a_cooccurrence_part_not_aligned_with_users_and_offers_is_refused(
    part: list[tuple[np.ndarray, np.ndarray]],
) -> None:
    with pytest.raises(ValueError):
        score_batch(np.zeros((1, DIM)), NOW, exploration_catalogue(), COOC, cooccurrence=part)


def test_an_offer_lifted_mostly_by_cooccurrence_is_explained_by_its_source() -> None:
    cat = exploration_catalogue()
    [row] = score_batch(
        np.zeros((1, DIM)),
        NOW,
        cat,
        COOC,
        cooccurrence=[sparse((1, 1.0))],
        because=[lambda offer: f"the item before {offer.title}"],
    )
    assert [s.reason for s in row] == [
        "Because you chose the item before Fresh",
        "Great value: Known",
    ]


def restock_catalogue() -> Catalogue:
    cat = Catalogue(dim=DIM)
    cat.upsert_item(Item(item_id="milk", repeatable=True))
    cat.upsert_offer(Offer(offer_id="known", title="Known", value=100, channels=("web",)))
    cat.upsert_offer(
        Offer(offer_id="milk", title="Milk", item_ids=("milk",), value=90, channels=("web",))
    )
    return cat


def test_the_restock_part_is_weighted_added_reported_and_speaks_in_the_reason() -> None:
    cat = restock_catalogue()
    lift = CFG.model_copy(update={"w_restock": 0.5})
    [row] = score_batch(np.zeros((1, DIM)), NOW, cat, lift, restock=[sparse((1, 0.9))])
    assert ids(row) == ["milk", "known"]
    assert {s.offer_id: s.parts["restock"] for s in row} == {"milk": 0.45, "known": 0.0}
    for scored in row:
        assert tuple(scored.parts) == (*PARTS, "restock")
        assert math.fsum(scored.parts.values()) == pytest.approx(scored.score, abs=1e-12)
    assert row[0].reason == "Time to restock Milk?"
    assert row[1].reason == "Great value: Known"


def test_the_restock_part_never_makes_an_excluded_offer_eligible() -> None:
    cat = restock_catalogue()
    [row] = score_batch(np.zeros((1, DIM)), NOW, cat, CFG, [{"milk"}], restock=[sparse((1, 1.0))])
    assert ids(row) == ["known"]
